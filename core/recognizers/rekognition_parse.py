"""Amazon Rekognition responses turned into the backend-neutral models of `core.analysis_types`.

Rekognition speaks percent (0..100) and may return boxes that spill over the image edge; the rest
of the program expects confidences and boxes as ratios in 0..1, so every value is converted here,
once. Responses are read defensively (every key may be missing) because a partial answer should
still give whatever it does contain. OCR lines and celebrity names come from the photo (anyone can
put text in front of a camera), so they go through `core.untrusted_text.clean_text` like EXIF strings do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from core.analysis_types import (
    Box,
    Celebrity,
    Color,
    DetectedObject,
    Emotion,
    Face,
    FaceAttributes,
    ImageProperties,
    Label,
    Landmark,
    ModerationLabel,
    Pose,
    TextLine,
)
from core.untrusted_text import clean_text

Json = Mapping[str, Any]

_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]{6}")
_NAME_LENGTH = 120
_TEXT_LENGTH = 500
_URL_LENGTH = 300


def parse_labels(response: Json) -> tuple[tuple[Label, ...], tuple[DetectedObject, ...]]:
    """Labels from DetectLabels, and the located instances of those labels as objects.

    Rekognition puts boxes under `Label.Instances` (only for common objects such as Person or
    Car); each instance becomes a `DetectedObject` carrying its label's name.
    """
    labels: list[Label] = []
    objects: list[DetectedObject] = []
    for item in _items(response.get("Labels")):
        name = _name(item.get("Name"))
        if name is None:
            continue
        labels.append(
            Label(
                name=name,
                confidence=_ratio(item.get("Confidence")),
                parents=_names(item.get("Parents")),
                categories=_names(item.get("Categories")),
            )
        )
        for instance in _items(item.get("Instances")):
            box = _box(instance.get("BoundingBox"))
            if box is not None:
                objects.append(
                    DetectedObject(name=name, confidence=_ratio(instance.get("Confidence")), box=box)
                )
    return tuple(labels), tuple(objects)


def parse_properties(response: Json) -> ImageProperties | None:
    """Whole-image quality and dominant colours from DetectLabels' IMAGE_PROPERTIES feature.

    Quality values are percentages in Rekognition and become 0..1; colours keep Rekognition's order
    (largest share first) with "#RRGGBB" hex, the pixel share as 0..1 and the simplified colour name
    (one of twelve, e.g. "blue"), falling back to the CSS name.
    """
    props = response.get("ImageProperties")
    if not isinstance(props, Mapping):
        return None
    quality = props.get("Quality")
    quality = quality if isinstance(quality, Mapping) else {}
    colors = tuple(c for c in (_color(item) for item in _items(props.get("DominantColors"))) if c is not None)
    return ImageProperties(
        brightness=_optional_ratio(quality.get("Brightness")),
        sharpness=_optional_ratio(quality.get("Sharpness")),
        contrast=_optional_ratio(quality.get("Contrast")),
        dominant_colors=colors,
    )


def parse_faces(response: Json) -> tuple[Face, ...]:
    """Faces from DetectFaces (Attributes=["ALL"]), attributes and landmarks included."""
    faces: list[Face] = []
    for item in _items(response.get("FaceDetails")):
        box = _box(item.get("BoundingBox"))
        if box is None:
            continue
        faces.append(
            Face(
                box=box,
                confidence=_ratio(item.get("Confidence")),
                attributes=_face_attributes(item),
                landmarks=_landmarks(item.get("Landmarks")),
            )
        )
    return tuple(faces)


def parse_text(response: Json) -> tuple[TextLine, ...]:
    """Text lines from DetectText; WORD detections are dropped since every word is also in a LINE."""
    lines: list[TextLine] = []
    for item in _items(response.get("TextDetections")):
        if item.get("Type") != "LINE":
            continue
        text = clean_text(_str(item.get("DetectedText")), _TEXT_LENGTH)
        geometry = item.get("Geometry")
        box = _box(geometry.get("BoundingBox")) if isinstance(geometry, Mapping) else None
        if text is None or box is None:
            continue
        lines.append(TextLine(text=text, confidence=_ratio(item.get("Confidence")), box=box))
    return tuple(lines)


def parse_moderation(response: Json) -> tuple[ModerationLabel, ...]:
    """Content warnings from DetectModerationLabels, each with its parent in the taxonomy."""
    labels: list[ModerationLabel] = []
    for item in _items(response.get("ModerationLabels")):
        name = _name(item.get("Name"))
        if name is None:
            continue
        parent = _name(item.get("ParentName")) or ""
        labels.append(ModerationLabel(name=name, confidence=_ratio(item.get("Confidence")), parent=parent))
    return tuple(labels)


def parse_celebrities(response: Json) -> tuple[Celebrity, ...]:
    """Recognised public figures from RecognizeCelebrities; the match confidence is the one kept."""
    found: list[Celebrity] = []
    for item in _items(response.get("CelebrityFaces")):
        name = _name(item.get("Name"))
        face = item.get("Face")
        box = _box(face.get("BoundingBox")) if isinstance(face, Mapping) else None
        if name is None or box is None:
            continue
        urls = tuple(
            url for url in (clean_text(_str(u), _URL_LENGTH) for u in _list(item.get("Urls"))) if url
        )
        found.append(Celebrity(name=name, confidence=_ratio(item.get("MatchConfidence")), box=box, urls=urls))
    return tuple(found)


def _face_attributes(item: Json) -> FaceAttributes:
    age = item.get("AgeRange")
    age = age if isinstance(age, Mapping) else {}
    gender = item.get("Gender")
    gender_name = _name(gender.get("Value")) if isinstance(gender, Mapping) else None
    emotions = [
        Emotion(name=name.lower(), confidence=_ratio(e.get("Confidence")))
        for e in _items(item.get("Emotions"))
        if (name := _name(e.get("Type"))) is not None
    ]
    emotions.sort(key=lambda e: e.confidence, reverse=True)
    return FaceAttributes(
        age_low=_int(age.get("Low")),
        age_high=_int(age.get("High")),
        smiling=_flag(item.get("Smile")),
        eyeglasses=_flag(item.get("Eyeglasses")),
        sunglasses=_flag(item.get("Sunglasses")),
        gender=gender_name,  # FaceAttributes keeps only Male / Female, in that spelling
        beard=_flag(item.get("Beard")),
        mustache=_flag(item.get("Mustache")),
        eyes_open=_flag(item.get("EyesOpen")),
        mouth_open=_flag(item.get("MouthOpen")),
        emotions=tuple(emotions),
        pose=_pose(item.get("Pose")),
    )


def _landmarks(value: object) -> tuple[Landmark, ...]:
    found: list[Landmark] = []
    for item in _items(value):
        name = _name(item.get("Type"))
        x, y = _float(item.get("X")), _float(item.get("Y"))
        if name is not None and x is not None and y is not None:
            # Landmarks of a face cut by the edge can lie outside the image: keep them drawable.
            found.append(Landmark(name=name, x=_clip01(x), y=_clip01(y)))
    return tuple(found)


def _pose(value: object) -> Pose | None:
    if not isinstance(value, Mapping):
        return None
    roll, yaw, pitch = (_float(value.get(k)) for k in ("Roll", "Yaw", "Pitch"))
    if roll is None or yaw is None or pitch is None:
        return None
    return Pose(roll=roll, yaw=yaw, pitch=pitch)


def _color(item: Json) -> Color | None:
    hex_code = _hex(item.get("HexCode")) or _rgb_hex(item.get("Red"), item.get("Green"), item.get("Blue"))
    if hex_code is None:
        return None
    name = _name(item.get("SimplifiedColor")) or _name(item.get("CSSColor")) or ""
    return Color(hex=hex_code, pixel_share=_ratio(item.get("PixelPercent")), name=name.lower())


def _hex(value: object) -> str | None:
    """Rekognition's HexCode in our "#RRGGBB" notation, whatever its case or leading "#"."""
    if not isinstance(value, str):
        return None
    digits = value.strip().removeprefix("#")
    return f"#{digits.upper()}" if _HEX_DIGITS.fullmatch(digits) else None


def _rgb_hex(red: object, green: object, blue: object) -> str | None:
    channels = [_int(c) for c in (red, green, blue)]
    if any(c is None for c in channels):
        return None
    return "#" + "".join(f"{min(max(c or 0, 0), 255):02X}" for c in channels)


def _box(value: object) -> Box | None:
    if not isinstance(value, Mapping):
        return None
    left, top, width, height = (_float(value.get(k)) for k in ("Left", "Top", "Width", "Height"))
    if left is None or top is None or width is None or height is None:
        return None
    return Box.clamped(left, top, width, height)


def _flag(value: object) -> bool | None:
    """A Rekognition `{"Value": bool, "Confidence": n}` attribute as a plain yes/no/unknown."""
    if isinstance(value, Mapping) and isinstance(value.get("Value"), bool):
        return bool(value["Value"])
    return None


def _names(value: object) -> tuple[str, ...]:
    return tuple(name for name in (_name(item.get("Name")) for item in _items(value)) if name is not None)


def _name(value: object) -> str | None:
    return clean_text(_str(value), _NAME_LENGTH)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _items(value: object) -> Iterable[Json]:
    """The mappings of a JSON list, skipping anything else, so one odd entry cannot spoil the rest."""
    return [item for item in _list(value) if isinstance(item, Mapping)]


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _int(value: object) -> int | None:
    number = _float(value)
    return round(number) if number is not None else None


def _ratio(value: object) -> float:
    """A Rekognition percentage as 0..1 (0 when absent, so a missing number never crashes a sort)."""
    return _optional_ratio(value) or 0.0


def _optional_ratio(value: object) -> float | None:
    number = _float(value)
    return _clip01(number / 100.0) if number is not None else None


def _clip01(value: float) -> float:
    return min(max(value, 0.0), 1.0)
