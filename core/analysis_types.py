"""Immutable value types passed between the layers.

A `Photo` goes in, a `PreparedPhoto` is what the recognizer sees, and an `Analysis` comes out.
Every box is a ratio (0..1) of the *oriented, prepared* image, so drawing it needs no knowledge
of the original file; every confidence is 0..1 whatever the backend's own scale is.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from PIL import Image

from core.describe.types import Description


class Feature(enum.StrEnum):
    """One analysis a recognizer can run. Each is billed separately on Rekognition, per image
    (labels and properties share one DetectLabels request but are two billed units)."""

    LABELS = "labels"
    FACES = "faces"
    TEXT = "text"
    MODERATION = "moderation"
    PROPERTIES = "properties"
    CELEBRITIES = "celebrities"
    DESCRIBE = "describe"
    """A caption and tags from a vision-language model (`core.describe`), run after recognition."""


# DESCRIBE joins the defaults when the operator configures a describer (`bot.settings`).
DEFAULT_FEATURES: frozenset[Feature] = frozenset(
    {Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION}
)


@dataclass(frozen=True, slots=True)
class Box:
    """A rectangle as ratios of the oriented image: left, top, width, height, each in 0..1."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def clamped(cls, left: float, top: float, width: float, height: float) -> Box:
        """Build a box clipped to the image, because backends return boxes that spill over the edge."""
        x0 = min(max(left, 0.0), 1.0)
        y0 = min(max(top, 0.0), 1.0)
        x1 = min(max(left + width, 0.0), 1.0)
        y1 = min(max(top + height, 0.0), 1.0)
        return cls(x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0))

    def as_list(self) -> list[float]:
        """The stable JSON form `[left, top, width, height]`, rounded so output diffs stay quiet."""
        return [round(self.left, 4), round(self.top, 4), round(self.width, 4), round(self.height, 4)]

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Pixel corners (x0, y0, x1, y1) on an image of the given size, for drawing."""
        x0 = round(self.left * width)
        y0 = round(self.top * height)
        x1 = round((self.left + self.width) * width)
        y1 = round((self.top + self.height) * height)
        return x0, y0, x1, y1


#: `Label.source` of a tag the describer added: a model's name for something, without a confidence.
DESCRIBE_SOURCE = "describe"


@dataclass(frozen=True, slots=True)
class Label:
    """Something the whole photo shows, with its place in the backend's taxonomy.

    `source` is "" for the recognizer's own labels and `DESCRIBE_SOURCE` for a describer's tag,
    whose `confidence` is 0 because a language model gives none (shown and written without one).
    """

    name: str
    confidence: float
    parents: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True, slots=True)
class DetectedObject:
    """One located instance of a label (a person, a car) with its box."""

    name: str
    confidence: float
    box: Box


@dataclass(frozen=True, slots=True)
class Emotion:
    name: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Pose:
    roll: float
    yaw: float
    pitch: float


@dataclass(frozen=True, slots=True)
class Landmark:
    """A facial landmark in image ratios (x, y), e.g. eyeLeft."""

    name: str
    x: float
    y: float


# The one spelling of each gender a face may be given, whatever the backend wrote ("female",
# "FEMALE"): Rekognition's own words, which the JSON document promises.
GENDERS: dict[str, str] = {"male": "Male", "female": "Female"}


@dataclass(frozen=True, slots=True)
class FaceAttributes:
    """What a backend could tell about a face; None means the backend did not say.

    `gender` is "Male", "Female" or None: it is normalised here, when the value is made, so no
    backend's spelling reaches the JSON, the summary or a chat, and any other word is dropped.
    """

    age_low: int | None = None
    age_high: int | None = None
    smiling: bool | None = None
    eyeglasses: bool | None = None
    sunglasses: bool | None = None
    gender: str | None = None
    beard: bool | None = None
    mustache: bool | None = None
    eyes_open: bool | None = None
    mouth_open: bool | None = None
    emotions: tuple[Emotion, ...] = ()
    pose: Pose | None = None

    def __post_init__(self) -> None:
        word = GENDERS.get(self.gender.strip().casefold()) if isinstance(self.gender, str) else None
        if word != self.gender:
            object.__setattr__(self, "gender", word)

    @property
    def top_emotion(self) -> Emotion | None:
        """The most confident emotion, the one worth showing in a one-line description."""
        return max(self.emotions, key=lambda e: e.confidence, default=None)


@dataclass(frozen=True, slots=True)
class Face:
    box: Box
    confidence: float
    attributes: FaceAttributes = field(default_factory=FaceAttributes)
    landmarks: tuple[Landmark, ...] = ()


@dataclass(frozen=True, slots=True)
class TextLine:
    text: str
    confidence: float
    box: Box


@dataclass(frozen=True, slots=True)
class ModerationLabel:
    """A content warning; `parent` is the next level up in the backend's taxonomy ("" at the top)."""

    name: str
    confidence: float
    parent: str = ""


@dataclass(frozen=True, slots=True)
class Celebrity:
    name: str
    confidence: float
    box: Box
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Color:
    """A dominant colour: sRGB hex, the share of pixels it covers (0..1) and a simple name."""

    hex: str
    pixel_share: float
    name: str = ""


@dataclass(frozen=True, slots=True)
class ImageProperties:
    """Whole-image quality, each 0..1 (backends scale differently; we normalise)."""

    brightness: float | None = None
    sharpness: float | None = None
    contrast: float | None = None
    dominant_colors: tuple[Color, ...] = ()


class ErrorKind(enum.StrEnum):
    """Why a feature failed, so callers can decide who is at fault (and whether to refund)."""

    THROTTLED = "throttled"
    INVALID_IMAGE = "invalid_image"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    ACCESS_DENIED = "access_denied"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FeatureError:
    feature: Feature
    kind: ErrorKind
    message: str


def reading_order(faces: Iterable[Face]) -> tuple[Face, ...]:
    """Faces left to right, then top to bottom (`left` rounded, so a column reads downwards)."""
    return tuple(sorted(faces, key=lambda f: (round(f.box.left, 3), f.box.top)))


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything a recognizer said about one photo; failed features are listed in `errors`.

    `faces` is always in reading order (`reading_order`, applied here whatever order the backend
    used), and that order IS the faces' numbering everywhere: face `n` (from 1) is `faces[n - 1]`,
    "#n" on the annotated image, in the summary and in every adapter's view, and the n-th entry of
    the JSON document's `faces`. Anything that shows faces numbers them by their index here and
    never sorts them again.
    """

    backend: str
    features: frozenset[Feature] = frozenset()
    labels: tuple[Label, ...] = ()
    objects: tuple[DetectedObject, ...] = ()
    faces: tuple[Face, ...] = ()
    text: tuple[TextLine, ...] = ()
    moderation: tuple[ModerationLabel, ...] = ()
    celebrities: tuple[Celebrity, ...] = ()
    properties: ImageProperties | None = None
    errors: tuple[FeatureError, ...] = ()
    description: Description | None = None

    def __post_init__(self) -> None:
        ordered = reading_order(self.faces)
        if ordered != self.faces:
            object.__setattr__(self, "faces", ordered)

    @property
    def failed(self) -> frozenset[Feature]:
        return frozenset(e.feature for e in self.errors)


@dataclass(frozen=True, slots=True)
class GpsPosition:
    latitude: float
    longitude: float
    altitude: float | None = None
    direction: float | None = None


@dataclass(frozen=True, slots=True)
class ExifData:
    """Camera metadata read from the original file; every string already cleaned (core.untrusted_text)."""

    make: str | None = None
    model: str | None = None
    lens: str | None = None
    datetime_original: datetime | None = None  # aware when the file gave an offset, naive otherwise
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    iso: int | None = None
    focal_length: float | None = None  # mm
    focal_length_35mm: float | None = None
    flash: str | None = None
    orientation: int | None = None  # 1..8, None when absent or invalid
    software: str | None = None
    gps: GpsPosition | None = None
    image_width: int | None = None
    image_height: int | None = None

    @property
    def is_empty(self) -> bool:
        return self == ExifData(image_width=self.image_width, image_height=self.image_height)


@dataclass(frozen=True, slots=True)
class Photo:
    """The bytes a user sent, as received. `name` is only used in messages and output file names."""

    data: bytes
    name: str = "photo"


@dataclass(frozen=True)
class PreparedPhoto:
    """The oriented, downsized 8-bit sRGB image and the JPEG made from it for the recognizer.

    `jpeg` is encoded from exactly `image` (same size and orientation; only JPEG compression noise
    differs), so boxes the recognizer returns for `jpeg` land on the same spots of `image`.
    """

    image: Image.Image
    jpeg: bytes
    source_format: str  # e.g. "JPEG", "HEIF", "PNG"
    original_width: int  # as stored, before orientation
    original_height: int
    orientation: int  # the EXIF orientation that was applied (1 = none)
    exif: ExifData

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height
