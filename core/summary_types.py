"""The value types of a photo's platform-neutral summary, and the wording of their atoms.

A `Summary` is an immutable, ordered tuple of typed sections holding typed items; `core.summary`
builds one from an `Analysis` and the photo's `ExifData`, and the renderers (`core.summary_text`
for the CLI, `bot.presentation` for the chat platforms) read it. Kept apart from the builder so
renderers import only these types and the builder may use the plain-text renderer without a circle.

Strings inside the model come from the photo (EXIF, OCR, labels): they are cleaned of control
characters by the readers but NOT escaped; every renderer must escape them for its own markup.
The formatted atoms the items expose ("1/120 s", "f/1.8", "97%") contain no markup either.

Privacy: when `show_location` is False the model holds a `HiddenLocationSection` that carries no
coordinates at all, so no renderer can leak them by mistake.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from core.analysis_types import (
    ErrorKind,
    Face,
    FaceAttributes,
    Feature,
)
from core.english import plural
from core.exif import format_exposure

# ---------------------------------------------------------------------------------------------
# Wording shared by every renderer
# ---------------------------------------------------------------------------------------------

FEATURE_NAMES: Mapping[Feature, str] = {
    Feature.LABELS: "labels",
    Feature.FACES: "face analysis",
    Feature.TEXT: "text recognition",
    Feature.MODERATION: "content moderation",
    Feature.PROPERTIES: "image quality",
    Feature.CELEBRITIES: "celebrity recognition",
    Feature.DESCRIBE: "description",
}

_FEATURE_ORDER: tuple[Feature, ...] = tuple(Feature)

#: How long a single photo-derived string may get in the summary; longer values are cut with "…".
MAX_VALUE_CHARS = 120

EMOTION_MIN_CONFIDENCE = 0.5


def feature_name(feature: Feature) -> str:
    """The words users see for a feature ("text recognition"), not the API constant."""
    return FEATURE_NAMES.get(feature, str(feature))


def _trim_number(value: float, decimals: int) -> str:
    """`value` with at most `decimals` decimals and no trailing zeros: 2.50 -> "2.5", 2.0 -> "2"."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_percent(confidence: float) -> str:
    """A 0..1 confidence as a whole percentage, "97%", clamped to 0..100."""
    if not math.isfinite(confidence):
        return "?%"
    return f"{round(min(max(confidence, 0.0), 1.0) * 100)}%"


def format_f_number(f_number: float) -> str | None:
    """Aperture as "f/1.8" (one decimal at most, "f/2" rather than "f/2.0")."""
    if not math.isfinite(f_number) or f_number <= 0:
        return None
    return f"f/{_trim_number(f_number, 1)}"


def format_focal_length(mm: float) -> str | None:
    """Focal length as "26 mm"; phone sensors' short focal lengths keep a decimal ("5.7 mm")."""
    if not math.isfinite(mm) or mm <= 0:
        return None
    return f"{_trim_number(mm, 0 if mm >= 10 else 1)} mm"


_CORPORATE_WORDS = frozenset(
    {"corporation", "corp", "co", "ltd", "inc", "company", "imaging", "gmbh", "ag", "co.,ltd", "limited"}
)


def _short_make(make: str) -> str:
    """Drop corporate suffixes: "NIKON CORPORATION" -> "NIKON", "EASTMAN KODAK COMPANY" -> "EASTMAN KODAK"."""
    words = make.split()
    while len(words) > 1 and words[-1].casefold().strip(".,") in _CORPORATE_WORDS:
        words.pop()
    return " ".join(words)


def format_camera(make: str | None, model: str | None) -> str | None:
    """Make and model as one name without repeating the make.

    Many cameras repeat the make in the model ("Canon" + "Canon EOS R5"), others do not
    ("Apple" + "iPhone 13 Pro"); both become a single natural name.
    """
    make = _short_make(make.strip()) if make and make.strip() else None
    model = model.strip() if model and model.strip() else None
    if make is None or model is None:
        return model or make
    make_words = {word.casefold() for word in make.split()}
    if model.casefold().startswith(make.casefold()) or model.split()[0].casefold() in make_words:
        return model  # "Canon" + "Canon EOS R5", "EASTMAN KODAK" + "KODAK EASYSHARE C813"
    return f"{make} {model}"


def format_utc_offset(offset: timedelta) -> str:
    """A UTC offset as "UTC+02:00", "UTC-03:30" or "UTC"."""
    minutes = round(offset.total_seconds() / 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def format_taken(moment: datetime) -> str:
    """When the photo was taken, "2023-05-14 18:03", with "(UTC+02:00)" when the file said so.

    A naive datetime is the camera's local clock with no known zone, so no zone is invented.
    """
    text = moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.utcoffset()
    return text if offset is None else f"{text} ({format_utc_offset(offset)})"


def map_url(latitude: float, longitude: float) -> str:
    """An OpenStreetMap link with a marker: needs no API key and tracks nobody."""
    lat, lon = f"{latitude:.5f}", f"{longitude:.5f}"
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"


_COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def compass_point(degrees: float) -> str:
    """The nearest of eight compass points for a bearing in degrees."""
    return _COMPASS[round((degrees % 360) / 45) % 8]


def _clip(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    """Shorten an over-long value so one attacker-sized EXIF field cannot flood a message."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _lower_common(name: str) -> str:
    """Lower-case title-cased words ("Traffic Light" -> "traffic light") but keep acronyms ("TV")."""
    return " ".join(w.lower() if w[1:].islower() or len(w) == 1 else w for w in name.split())


# ---------------------------------------------------------------------------------------------
# Items
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelItem:
    """A whole-image label: "Dog 97%"; a describer's tag (`described`) has no confidence: "Gravel"."""

    name: str
    confidence: float
    described: bool = False

    @property
    def percent(self) -> str:
        """ "97%", or "" for a describer's tag (a language model gives no confidence)."""
        return "" if self.described else format_percent(self.confidence)

    @property
    def text(self) -> str:
        """The label as shown in a list: "Dog 97%", or "Gravel" for a describer's tag."""
        return f"{self.name} {self.percent}" if self.percent else self.name


@dataclass(frozen=True, slots=True)
class ModerationItem:
    """One content warning; `parent` is its category one level up ("" at the top)."""

    name: str
    confidence: float
    parent: str = ""

    @property
    def percent(self) -> str:
        return format_percent(self.confidence)


@dataclass(frozen=True, slots=True)
class ObjectCount:
    """How many boxes of one kind were found: `phrase` is "2 people" / "1 dog"."""

    name: str
    count: int

    @property
    def phrase(self) -> str:
        noun = _lower_common(self.name)
        return f"{self.count} {noun if self.count == 1 else plural(noun)}"


# Only the backends' two known values are shown: anything else a backend sends is not echoed.
_GENDERS = frozenset({"male", "female"})


@dataclass(frozen=True, slots=True)
class FaceItem:
    """One face, numbered as on the annotated image (left to right); None means "not known"."""

    number: int
    confidence: float
    age_low: int | None = None
    age_high: int | None = None
    gender: str | None = None  # "male" / "female": how the face appears to the backend, when it said
    smiling: bool | None = None
    emotion: str | None = None  # lower-case top emotion, only when the backend was fairly sure
    eyeglasses: bool | None = None
    sunglasses: bool | None = None

    @classmethod
    def from_face(cls, number: int, face: Face) -> FaceItem:
        """Keep only what a one-line description uses, deciding here which emotion is worth saying."""
        attrs: FaceAttributes = face.attributes
        top = attrs.top_emotion
        gender = (attrs.gender or "").casefold()
        emotion = None
        if top is not None and top.confidence >= EMOTION_MIN_CONFIDENCE:
            word = _clip(top.name, 30).casefold()
            emotion = word if word and word != "unknown" else None
        return cls(
            number=number,
            confidence=face.confidence,
            age_low=attrs.age_low,
            age_high=attrs.age_high,
            gender=gender if gender in _GENDERS else None,
            smiling=attrs.smiling,
            emotion=emotion,
            eyeglasses=attrs.eyeglasses,
            sunglasses=attrs.sunglasses,
        )

    @property
    def age(self) -> str | None:
        """ "25-32", "30", "25+", "under 32", or None when the backend gave no age."""
        low, high = self.age_low, self.age_high
        if low is not None and high is not None:
            return str(low) if low == high else f"{min(low, high)}-{max(low, high)}"
        if low is not None:
            return f"{low}+"
        if high is not None:
            return f"under {high}"
        return None

    @property
    def traits(self) -> tuple[str, ...]:
        """The short attribute words, in display order: gender, age, smiling, emotion, glasses."""
        parts: list[str] = []
        if self.gender is not None:
            parts.append(self.gender)
        if (age := self.age) is not None:
            parts.append(age)
        if self.smiling:
            parts.append("smiling")
        if self.emotion and not (self.smiling and self.emotion == "happy"):
            parts.append(self.emotion)
        if self.sunglasses:
            parts.append("sunglasses")
        elif self.eyeglasses:
            parts.append("glasses")
        return tuple(parts)

    @property
    def description(self) -> str:
        """The traits as one line, "female, 25-32, smiling, glasses" ("" when nothing is known)."""
        return ", ".join(self.traits)

    @property
    def tag(self) -> str:
        """ "#1": the number drawn next to the face on the annotated image."""
        return f"#{self.number}"


@dataclass(frozen=True, slots=True)
class CelebrityItem:
    """A recognised public figure; `urls` are the backend's reference links (often without scheme)."""

    name: str
    confidence: float
    urls: tuple[str, ...] = ()

    @property
    def percent(self) -> str:
        return format_percent(self.confidence)


@dataclass(frozen=True, slots=True)
class ColorItem:
    """A dominant colour: "#RRGGBB", a simple name ("" when unknown) and its share of the pixels."""

    hex: str
    name: str
    share: float

    @property
    def percent(self) -> str:
        return format_percent(self.share)

    @property
    def label(self) -> str:
        """The colour's name if it has one, else its hex code."""
        return self.name or self.hex


@dataclass(frozen=True, slots=True)
class FailedFeature:
    """A requested feature that failed for this photo, with the backend's (cleaned) message."""

    feature: Feature
    kind: ErrorKind
    message: str

    @property
    def name(self) -> str:
        return feature_name(self.feature)


# ---------------------------------------------------------------------------------------------
# Sections, in the order they are shown
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DescriptionSection:
    """The describer's caption, shown at the top. Model output: cleaned, not escaped, untrusted."""

    text: str
    backend: str
    model: str


@dataclass(frozen=True, slots=True)
class ModerationSection:
    """Content warnings: first when present (after the caption), so they cannot be overlooked."""

    items: tuple[ModerationItem, ...]


@dataclass(frozen=True, slots=True)
class LabelsSection:
    """The most confident labels; `omitted` more were found but left out."""

    items: tuple[LabelItem, ...]
    omitted: int = 0


@dataclass(frozen=True, slots=True)
class ObjectsSection:
    """Located objects counted per kind, most numerous first."""

    counts: tuple[ObjectCount, ...]

    @property
    def total(self) -> int:
        return sum(c.count for c in self.counts)

    @property
    def phrase(self) -> str:
        """ "2 people, 1 dog"."""
        return ", ".join(c.phrase for c in self.counts)


@dataclass(frozen=True, slots=True)
class FacesSection:
    """Every face, numbered like the boxes on the annotated image."""

    faces: tuple[FaceItem, ...]

    @property
    def count(self) -> int:
        return len(self.faces)


@dataclass(frozen=True, slots=True)
class CelebritiesSection:
    items: tuple[CelebrityItem, ...]


@dataclass(frozen=True, slots=True)
class TextSection:
    """Recognised text lines (each already clipped); `omitted` more lines were left out."""

    lines: tuple[str, ...]
    omitted: int = 0


@dataclass(frozen=True, slots=True)
class CameraSection:
    """Camera, settings, lens and time of capture from EXIF; every field optional."""

    camera: str | None = None  # make and model, de-duplicated ("Apple iPhone 13 Pro")
    lens: str | None = None
    focal_length: float | None = None  # mm
    focal_length_35mm: float | None = None  # mm, 35 mm equivalent
    f_number: float | None = None
    exposure_time: float | None = None  # seconds
    iso: int | None = None
    flash: str | None = None  # the EXIF reader's words: "fired", "did not fire", "no flash"...
    software: str | None = None
    taken: datetime | None = None  # aware when the file gave a UTC offset

    @property
    def focal_text(self) -> str | None:
        """ "26 mm (77 mm equiv.)", the equivalent only when it says something new."""
        actual = format_focal_length(self.focal_length) if self.focal_length is not None else None
        equiv = self.focal_length_35mm
        equiv_text = format_focal_length(equiv) if equiv is not None else None
        if actual is None:
            return f"{equiv_text} equiv." if equiv_text else None
        if equiv_text is None or equiv_text == actual:
            return actual
        return f"{actual} ({equiv_text} equiv.)"

    @property
    def flash_text(self) -> str | None:
        """ "flash fired", "flash did not fire", "no flash" (from the EXIF reader's description)."""
        if not self.flash:
            return None
        return self.flash if self.flash.casefold().startswith(("no ", "flash")) else f"flash {self.flash}"

    @property
    def settings(self) -> tuple[str, ...]:
        """Shooting settings as atoms to join with " · ": focal length, aperture, time, ISO, flash."""
        atoms = [
            self.focal_text,
            format_f_number(self.f_number) if self.f_number is not None else None,
            format_exposure(self.exposure_time),
            f"ISO {self.iso}" if self.iso is not None and self.iso > 0 else None,
            self.flash_text,
        ]
        return tuple(a for a in atoms if a)

    @property
    def taken_text(self) -> str | None:
        return format_taken(self.taken) if self.taken is not None else None


@dataclass(frozen=True, slots=True)
class LocationSection:
    """The GPS position, present only when the settings allow showing it."""

    latitude: float
    longitude: float
    altitude: float | None = None  # metres above sea level (negative below)
    direction: float | None = None  # degrees, where the camera pointed

    @property
    def coordinates(self) -> str:
        """ "48.85837, 2.29448" (decimal degrees, about 1 m precision)."""
        return f"{self.latitude:.5f}, {self.longitude:.5f}"

    @property
    def map_url(self) -> str:
        return map_url(self.latitude, self.longitude)

    @property
    def altitude_text(self) -> str | None:
        """ "35 m above sea level" / "12 m below sea level"."""
        if self.altitude is None:
            return None
        where = "below" if self.altitude < 0 else "above"
        return f"{round(abs(self.altitude))} m {where} sea level"

    @property
    def direction_text(self) -> str | None:
        """ "facing W (270°)"."""
        if self.direction is None:
            return None
        return f"facing {compass_point(self.direction)} ({round(self.direction) % 360}°)"


@dataclass(frozen=True, slots=True)
class HiddenLocationSection:
    """The photo carries a GPS position that is deliberately not shown. Holds no coordinates."""

    note: str = "The photo carries a GPS location, which is not shown."


@dataclass(frozen=True, slots=True)
class PropertiesSection:
    """Whole-image quality (each 0..1 or None) and dominant colours, biggest share first."""

    brightness: float | None = None
    sharpness: float | None = None
    contrast: float | None = None
    colors: tuple[ColorItem, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        """Plain words for the numbers: ("bright", "sharp", "low contrast")."""
        out: list[str] = []
        if self.brightness is not None:
            out.append(_bucket(self.brightness, _BRIGHTNESS_WORDS))
        if self.sharpness is not None:
            out.append(_bucket(self.sharpness, _SHARPNESS_WORDS))
        if self.contrast is not None:
            word = _bucket(self.contrast, _CONTRAST_WORDS)
            if word:
                out.append(word)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class RecognizerSection:
    """Which backend answered, what failed and what this backend cannot do. Always present, last."""

    backend: str
    failed: tuple[FailedFeature, ...] = ()
    unsupported: tuple[Feature, ...] = ()  # requested but not in the backend's capabilities
    found_nothing: bool = False  # features ran without error and found nothing at all

    @property
    def unsupported_names(self) -> tuple[str, ...]:
        return tuple(feature_name(f) for f in self.unsupported)


Section = (
    DescriptionSection
    | ModerationSection
    | LabelsSection
    | ObjectsSection
    | FacesSection
    | CelebritiesSection
    | TextSection
    | CameraSection
    | LocationSection
    | HiddenLocationSection
    | PropertiesSection
    | RecognizerSection
)

S = TypeVar("S", bound=Section)


@dataclass(frozen=True, slots=True)
class Summary:
    """Everything worth telling about one photo, as typed sections in display order.

    Only non-empty sections are present (except `RecognizerSection`, always last). Renderers
    iterate `sections` and `match` on the type; `get` fetches one kind when a renderer places
    it specially (a photo caption, for example).
    """

    sections: tuple[Section, ...]

    def get(self, kind: type[S]) -> S | None:
        """The section of type `kind`, or None when the summary has none."""
        for section in self.sections:
            if isinstance(section, kind):
                return section
        return None

    @property
    def recognizer(self) -> RecognizerSection:
        section = self.get(RecognizerSection)
        assert section is not None, "build_summary always adds a RecognizerSection"
        return section


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------

_BRIGHTNESS_WORDS: tuple[tuple[float, str], ...] = (
    (0.2, "very dark"),
    (0.4, "dark"),
    (0.65, "medium brightness"),
    (0.85, "bright"),
    (math.inf, "very bright"),
)


_SHARPNESS_WORDS: tuple[tuple[float, str], ...] = (
    (0.3, "blurry"),
    (0.6, "slightly soft"),
    (math.inf, "sharp"),
)
_CONTRAST_WORDS: tuple[tuple[float, str], ...] = (
    (0.3, "low contrast"),
    (0.75, ""),
    (math.inf, "high contrast"),
)


def _bucket(value: float, words: tuple[tuple[float, str], ...]) -> str:
    for limit, word in words:
        if value < limit:
            return word
    return words[-1][1]
