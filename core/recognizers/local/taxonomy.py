"""From ImageNet's 1000 fine classes to labels people (and Rekognition) use, with parents.

ImageNet names a photo's subject very finely ("Egyptian cat", "moped", "espresso") and has no
class for the general word ("cat", "motorcycle", "coffee"). Rekognition answers both: "Tabby"
with parents "Cat", "Pet", "Mammal", "Animal", each of them a label as well. This module is the
curated bridge, written by hand from WordNet's hypernyms (a moped IS-A motorbike IS-A motorcycle;
a missile IS-A rocket) and Rekognition's label names:

- `CLASS_LABELS[i]`: class i's own label name (title case, with the two clashing lemmas told
  apart) and its direct parents;
- `PARENTS`: each general label's direct parents, so that every ancestor is reached
  (`ancestors`).

Coverage: every animal class (by ImageNet's WordNet-ordered ranges), vehicles, cameras,
electronics, drinks, food, clothing, household textiles, furniture, instruments, balls, buildings,
landscapes and plants. Classes not listed keep their own name and have no parents. Two deliberate choices:
ImageNet's "projectile, missile" (744) and "space shuttle" (812) also count towards "Rocket", as
photos of launches are classified as either; and the people classes (ballplayer, groom, scuba
diver) do not produce "Person", which only the body detector gives, so a Person label always
comes with a box.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.recognizers.local.imagenet import CLASS_NAMES

__all__ = ["CLASS_LABELS", "PARENTS", "ancestors"]

# General label -> its direct parents.
PARENTS: dict[str, tuple[str, ...]] = {
    "Animal": (),
    "Mammal": ("Animal",),
    "Bird": ("Animal",),
    "Fish": ("Animal",),
    "Reptile": ("Animal",),
    "Amphibian": ("Animal",),
    "Invertebrate": ("Animal",),
    "Insect": ("Invertebrate",),
    "Butterfly": ("Insect",),
    "Spider": ("Invertebrate",),
    "Crustacean": ("Invertebrate",),
    "Sea Life": ("Animal",),
    "Turtle": ("Reptile",),
    "Lizard": ("Reptile",),
    "Snake": ("Reptile",),
    "Crocodile": ("Reptile",),
    "Pet": ("Animal",),
    "Dog": ("Canine", "Pet"),
    "Canine": ("Mammal",),
    "Cat": ("Mammal", "Pet"),
    "Wildlife": ("Animal",),
    "Bear": ("Mammal", "Wildlife"),
    "Primate": ("Mammal",),
    "Monkey": ("Primate",),
    "Ape": ("Primate",),
    "Rodent": ("Mammal",),
    "Rabbit": ("Rodent",),
    "Elephant": ("Mammal", "Wildlife"),
    "Marine Mammal": ("Mammal", "Sea Life"),
    "Livestock": ("Mammal",),
    "Antelope": ("Mammal", "Wildlife"),
    "Transportation": (),
    "Vehicle": ("Transportation",),
    "Car": ("Vehicle",),
    "Truck": ("Vehicle",),
    "Bus": ("Vehicle",),
    "Motorcycle": ("Vehicle",),
    "Bicycle": ("Vehicle",),
    "Train": ("Vehicle",),
    "Boat": ("Vehicle",),
    "Aircraft": ("Vehicle",),
    "Airplane": ("Aircraft",),
    "Spacecraft": ("Vehicle",),
    "Rocket": ("Vehicle",),
    "Weapon": (),
    "Electronics": (),
    "Camera": ("Electronics",),
    "Phone": ("Electronics",),
    "Computer": ("Electronics",),
    "Screen": ("Electronics",),
    "Beverage": (),
    "Coffee": ("Beverage",),
    "Alcohol": ("Beverage",),
    "Wine": ("Alcohol",),
    "Beer": ("Alcohol",),
    "Cup": ("Tableware",),
    "Tableware": (),
    "Bottle": (),
    "Food": (),
    "Fruit": ("Food", "Plant"),
    "Vegetable": ("Food", "Plant"),
    "Dessert": ("Food",),
    "Clothing": (),
    "Textile": (),
    "Coat": ("Clothing",),
    "Dress": ("Clothing",),
    "Swimwear": ("Clothing",),
    "Hat": ("Clothing",),
    "Helmet": ("Clothing",),
    "Footwear": ("Clothing",),
    "Shoe": ("Footwear",),
    "Accessories": (),
    "Tie": ("Accessories",),
    "Sunglasses": ("Accessories",),
    "Furniture": (),
    "Chair": ("Furniture",),
    "Table": ("Furniture",),
    "Bed": ("Furniture",),
    "Couch": ("Furniture",),
    "Cabinet": ("Furniture",),
    "Musical Instrument": (),
    "Guitar": ("Musical Instrument",),
    "Piano": ("Musical Instrument",),
    "Drum": ("Musical Instrument",),
    "Sport": (),
    "Ball": ("Sport",),
    "Architecture": (),
    "Building": ("Architecture",),
    "Shop": ("Building",),
    "Place of Worship": ("Building",),
    "Bridge": ("Architecture",),
    "Nature": (),
    "Outdoors": (),
    "Landscape": ("Nature", "Outdoors"),
    "Mountain": ("Landscape",),
    "Water": ("Nature",),
    "Plant": ("Nature",),
    "Flower": ("Plant",),
    "Fungus": ("Plant",),
    "Tool": (),
    "Document": (),
    "Clock": (),
    # Scenes: what ImageNet classes say about where the photo was taken (see also `scenes`).
    "Indoors": (),
    "Room": ("Indoors",),
    "Kitchen": ("Room", "Indoors"),
    "Appliance": (),
    "City": ("Outdoors",),
    "Road": ("Outdoors",),
    "Street": ("City", "Road", "Outdoors"),
    "Coast": ("Water", "Outdoors"),
    "Beach": ("Coast", "Outdoors", "Nature"),
    "Snow": ("Outdoors", "Nature"),
    "Skiing": ("Sport", "Snow"),
    "Amusement Park": ("Outdoors",),
    "Meal": ("Food",),
}

_CLASS_PARENTS: dict[str, tuple[str, ...]] = {}  # filled below: class name or index -> parents


def _ranges(spec: str) -> list[int]:
    """The indices a spec such as `0-6 389-397` names."""
    out: list[int] = []
    for part in spec.split():
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


# Animal classes by index range (ImageNet's classes follow WordNet's tree, so ranges are clean).
_ANIMALS: list[tuple[str, tuple[str, ...]]] = [
    ("0-6 389-397", ("Fish",)),
    ("7-24 80-100 127-146", ("Bird",)),
    ("25-32", ("Amphibian",)),
    ("33-37", ("Turtle",)),
    ("38-48", ("Lizard",)),
    ("49-50", ("Crocodile",)),
    ("51", ("Reptile",)),
    ("52-68", ("Snake",)),
    ("69 78-79 107-117", ("Invertebrate",)),
    ("70-77", ("Spider",)),
    ("118-126", ("Crustacean",)),
    ("101 385-386", ("Elephant",)),
    ("102-106 298-299 334 355-363 387-388", ("Mammal", "Wildlife")),
    ("147-150", ("Marine Mammal",)),
    ("151-268", ("Dog",)),
    ("269-280", ("Canine", "Wildlife")),
    ("281-285", ("Cat",)),
    ("286-293", ("Mammal", "Wildlife")),
    ("294-297", ("Bear",)),
    ("300-320", ("Insect",)),
    ("321-326", ("Butterfly",)),
    ("327-329", ("Sea Life", "Invertebrate")),
    ("330-332", ("Rabbit",)),
    ("333 335-338", ("Rodent",)),
    ("339-340 348-354", ("Mammal", "Wildlife")),
    ("341-347", ("Livestock",)),
    ("364 383-384", ("Primate",)),
    ("365-368", ("Ape",)),
    ("369-382", ("Monkey",)),
]

# Object classes by name (the lemma in CLASS_NAMES) -> direct parents.
_OBJECTS: list[tuple[str, tuple[str, ...]]] = [
    # Vehicles
    (
        "ambulance|beach wagon|cab|convertible|jeep|limousine|minivan|Model T|police van|racer|"
        "sports car|go-kart|golfcart",
        ("Car",),
    ),
    (
        "fire engine|garbage truck|moving van|pickup|tow truck|trailer truck|tractor|forklift|"
        "half track|harvester|thresher",
        ("Truck",),
    ),
    ("snowplow", ("Truck", "Snow")),
    ("minibus|school bus|trolleybus|recreational vehicle", ("Bus",)),
    ("moped|motor scooter", ("Motorcycle",)),
    ("bicycle-built-for-two|mountain bike|tricycle|unicycle", ("Bicycle",)),
    ("bullet train|electric locomotive|freight car|passenger car|steam locomotive|streetcar", ("Train",)),
    (
        "aircraft carrier|canoe|catamaran|container ship|fireboat|gondola|lifeboat|liner|"
        "pirate|schooner|speedboat|submarine|trimaran|yawl|paddlewheel",
        ("Boat",),
    ),
    ("airliner|warplane", ("Airplane",)),
    ("airship|balloon|parachute", ("Aircraft",)),
    ("missile", ("Rocket",)),  # not "Weapon": launch photos are called missiles too
    ("projectile", ("Rocket",)),
    ("space shuttle", ("Spacecraft", "Rocket")),
    ("assault rifle|revolver|rifle|cannon", ("Weapon",)),
    # Electronics
    ("Polaroid camera|reflex camera", ("Camera",)),
    ("cellular telephone|dial telephone|pay-phone", ("Phone",)),
    ("desktop computer|laptop|notebook|hand-held computer", ("Computer",)),
    ("monitor|screen|television|home theater", ("Screen",)),
    (
        "computer keyboard|mouse|modem|printer|iPod|CD player|cassette player|tape player|radio|"
        "loudspeaker|remote control|projector|joystick|hard disc",
        ("Electronics",),
    ),
    ("analog clock|digital clock|wall clock|digital watch|stopwatch|sundial|hourglass", ("Clock",)),
    # Drinks, tableware and food
    ("espresso", ("Coffee",)),
    ("coffee mug", ("Cup", "Coffee")),
    ("cup", ("Tableware",)),
    ("red wine", ("Wine",)),
    ("beer bottle|beer glass", ("Beer",)),
    ("eggnog", ("Beverage",)),
    ("wine bottle|water bottle|pop bottle|pill bottle|whiskey jug", ("Bottle",)),
    (
        "soup bowl|mixing bowl|goblet|teapot|coffeepot|pitcher|water jug|tray|wok|"
        "frying pan|ladle|wooden spoon|spatula|measuring cup",
        ("Tableware",),
    ),
    ("plate", ("Tableware", "Meal")),  # ImageNet's plates are plates of food
    (
        "refrigerator|microwave|stove|dishwasher|toaster|espresso maker|Dutch oven|Crock Pot|"
        "rotisserie|waffle iron|caldron",
        ("Appliance", "Kitchen"),
    ),
    ("street sign|traffic light|parking meter", ("Street",)),
    (
        "guacamole|consomme|hot pot|cheeseburger|hotdog|mashed potato|carbonara|meat loaf|pizza|"
        "potpie|burrito|French loaf|bagel|pretzel|dough|chocolate sauce",
        ("Food",),
    ),
    ("trifle|ice cream|ice lolly", ("Dessert",)),
    (
        "head cabbage|broccoli|cauliflower|zucchini|spaghetti squash|acorn squash|butternut squash|"
        "cucumber|artichoke|bell pepper|cardoon|corn",
        ("Vegetable",),
    ),
    (
        "Granny Smith|strawberry|orange|lemon|fig|pineapple|banana|jackfruit|custard apple|pomegranate",
        ("Fruit",),
    ),
    # Clothing and accessories
    (
        "abaya|academic gown|apron|cardigan|jean|jersey|kimono|military uniform|pajama|poncho|"
        "sarong|suit|sweatshirt|vestment|bulletproof vest|cloak|stole|feather boa|bib|"
        "brassiere|diaper|sock|mitten|velvet|wool",
        ("Clothing",),
    ),
    ("fur coat|lab coat|trench coat", ("Coat",)),
    ("gown|hoopskirt|miniskirt|overskirt", ("Dress",)),
    ("bikini|maillot|swimming trunks", ("Swimwear",)),
    ("bathing cap|bearskin|bonnet|cowboy hat|mortarboard|sombrero|shower cap", ("Hat",)),
    ("crash helmet|football helmet|pickelhaube", ("Helmet",)),
    ("clog|cowboy boot|Loafer|running shoe|sandal", ("Shoe",)),
    ("bolo tie|bow tie|Windsor tie", ("Tie",)),
    ("sunglass|sunglasses", ("Sunglasses",)),
    ("backpack|purse|wallet|necklace|hair slide|wig|umbrella|mailbag", ("Accessories",)),
    # Household textiles: cloth that is not worn (WordNet: a fabric article or furnishing)
    (
        "handkerchief|bath towel|dishrag|quilt|prayer rug|shower curtain|theater curtain|sleeping bag",
        ("Textile",),
    ),
    # Furniture
    ("barber chair|folding chair|rocking chair|throne|park bench", ("Chair",)),
    ("desk|dining table", ("Table",)),
    ("four-poster|crib|cradle|bassinet", ("Bed",)),
    ("studio couch", ("Couch",)),
    ("bookcase|chiffonier|china cabinet|wardrobe|medicine chest|chest", ("Cabinet",)),
    # Music
    ("acoustic guitar|electric guitar|banjo", ("Guitar",)),
    ("grand piano|upright", ("Piano",)),
    ("drum|steel drum|gong|marimba", ("Drum",)),
    (
        "accordion|bassoon|cello|cornet|flute|French horn|harmonica|harp|maraca|oboe|ocarina|"
        "organ|panpipe|sax|trombone|violin",
        ("Musical Instrument",),
    ),
    # Sport
    (
        "baseball|basketball|croquet ball|golf ball|ping-pong ball|rugby ball|soccer ball|"
        "tennis ball|volleyball|puck",
        ("Ball",),
    ),
    (
        "balance beam|barbell|dumbbell|horizontal bar|parallel bars|punching bag|racket",
        ("Sport",),
    ),
    ("ski|ski mask", ("Skiing",)),
    ("bobsled|snowmobile|dogsled", ("Sport", "Snow")),
    ("carousel", ("Amusement Park",)),
    # Buildings and places
    (
        "bakery|barbershop|bookshop|butcher shop|confectionery|grocery store|shoe shop|tobacco shop|toyshop",
        ("Shop",),
    ),
    ("church|mosque|monastery|stupa|bell cote|altar", ("Place of Worship",)),
    (
        "apiary|barn|boathouse|castle|cinema|cliff dwelling|greenhouse|library|lumbermill|palace|"
        "planetarium|prison|restaurant|yurt|dome|water tower|triumphal arch|obelisk|"
        "thatch|tile roof|mobile home",
        ("Building",),
    ),
    ("steel arch bridge|suspension bridge|viaduct", ("Bridge",)),
    ("alp", ("Mountain", "Snow")),
    ("volcano", ("Mountain",)),
    ("cliff|valley|promontory|geyser", ("Landscape",)),
    ("seashore|sandbar", ("Beach",)),
    ("lakeside|coral reef|breakwater|dam", ("Water", "Outdoors")),
    ("daisy|yellow lady's slipper", ("Flower",)),
    ("rapeseed|hay|buckeye|acorn|hip", ("Plant",)),
    ("mushroom|coral fungus|agaric|gyromitra|stinkhorn|earthstar|hen-of-the-woods|bolete", ("Fungus",)),
    # Tools and documents
    (
        "hammer|hatchet|screwdriver|power drill|chain saw|shovel|plunger|can opener|corkscrew|"
        "cleaver|letter opener|carpenter's kit|plow|lawn mower",
        ("Tool",),
    ),
    ("web site|comic book|crossword puzzle|book jacket|menu|envelope|binder", ("Document",)),
]

# Own label names that differ from the title-cased lemma (clashes and clumsy lemmas).
_RENAMED: dict[int, str] = {
    134: "Crane (Bird)",
    517: "Construction Crane",
    638: "Tights",
    639: "Swimsuit",
    836: "Sunglasses",
    837: "Sunglasses",
    504: "Coffee Cup",
    670: "Motor Scooter",
    744: "Projectile",
    981: "Baseball Player",
    982: "Groom",
    983: "Scuba Diver",
}


def _title(lemma: str) -> str:
    """Title case ("coffee mug" -> "Coffee Mug"); words already holding a capital ("iPod") are kept."""
    words = lemma.split(" ")
    return " ".join(w if any(c.isupper() for c in w) else w[:1].upper() + w[1:] for w in words)


def _build() -> tuple[tuple[str, tuple[str, ...]], ...]:
    parents: dict[int, tuple[str, ...]] = {}
    for spec, labels in _ANIMALS:
        for index in _ranges(spec):
            parents[index] = labels
    by_name: dict[str, list[int]] = {}
    for index, name in enumerate(CLASS_NAMES):
        by_name.setdefault(name, []).append(index)
    for names, labels in _OBJECTS:
        for name in names.split("|"):
            for index in by_name[name]:  # a KeyError here is a typo in the table
                parents[index] = labels
    parents[517] = ("Vehicle",)  # the crane that lifts is no bird
    parents[638] = ("Clothing",)  # the maillot that is tights, not the swimsuit
    out = []
    for index, name in enumerate(CLASS_NAMES):
        out.append((_RENAMED.get(index, _title(name)), parents.get(index, ())))
    return tuple(out)


CLASS_LABELS: tuple[tuple[str, tuple[str, ...]], ...] = _build()


def ancestors(parents: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """Every ancestor of labels with these direct parents, with its distance (1 = direct), nearest first."""
    seen: dict[str, int] = {}
    frontier = [(name, 1) for name in parents]
    while frontier:
        name, depth = frontier.pop(0)
        if name in seen:
            continue
        seen[name] = depth
        frontier.extend((parent, depth + 1) for parent in PARENTS.get(name, ()))
    return tuple(sorted(seen.items(), key=lambda item: item[1]))
