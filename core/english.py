"""English plurals for the object counts of a summary ("2 people, 3 knives, 2 sheep").

Object names come from two vocabularies (Rekognition's labels and COCO's classes), so the list of
irregular nouns below is short and concrete rather than a general inflection engine: the nouns
those vocabularies use whose plural is not "add s/es", plus the ones that are already plural or
have no plural. A name of several words ("wine glass", "police man") takes the plural on its
last word, keeping the case the name was given in ("TV" -> "TVs").
"""

from __future__ import annotations

_IRREGULAR = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "foot": "feet",
    "tooth": "teeth",
    "goose": "geese",
    "mouse": "mice",
    "ox": "oxen",
    "knife": "knives",
    "wife": "wives",
    "life": "lives",
    "leaf": "leaves",
    "loaf": "loaves",
    "half": "halves",
    "calf": "calves",
    "wolf": "wolves",
    "shelf": "shelves",
    "scarf": "scarves",
    "thief": "thieves",
    "potato": "potatoes",
    "tomato": "tomatoes",
    "hero": "heroes",
    "cactus": "cacti",
    "fungus": "fungi",
}

# Already plural, or the same in both numbers: counted as they are.
_UNCHANGED = frozenset(
    {
        "sheep",
        "deer",
        "fish",
        "moose",
        "bison",
        "aircraft",
        "spacecraft",
        "people",
        "glasses",
        "sunglasses",
        "goggles",
        "scissors",
        "pliers",
        "tongs",
        "binoculars",
        "headphones",
        "jeans",
        "pants",
        "shorts",
        "trousers",
        "skis",
        "footwear",
        "clothing",
        "furniture",
        "luggage",
        "equipment",
        "series",
        "species",
    }
)


def plural(noun: str) -> str:
    """The plural of a noun or a noun phrase (its last word is inflected)."""
    head, space, last = noun.rpartition(" ")
    return head + space + _plural_word(last)


def _plural_word(word: str) -> str:
    lower = word.casefold()
    if not lower or lower in _UNCHANGED:
        return word
    if lower in _IRREGULAR:
        return _same_case(_IRREGULAR[lower], word)
    if word.isupper() and len(word) > 1:
        return word + "s"  # acronyms: TVs, PCs
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if len(word) > 1 and lower.endswith("y") and lower[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _same_case(plural_word: str, original: str) -> str:
    """Keep a capitalised or upper-case original's case in its irregular plural."""
    if original.isupper() and len(original) > 1:
        return plural_word.upper()
    if original[:1].isupper():
        return plural_word[:1].upper() + plural_word[1:]
    return plural_word
