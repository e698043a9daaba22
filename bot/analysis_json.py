"""The stable JSON document the CLI prints per photo (documented in the README).

Scripts rely on these keys, so this is the only place that shapes them; fields are added, never
renamed. Numbers stay numbers, unknown EXIF values are left out rather than null, boxes are
`[left, top, width, height]` ratios of the oriented image, and confidences are 0..1.
"""

from __future__ import annotations

from typing import Any

from core.analysis_types import (
    DESCRIBE_SOURCE,
    Analysis,
    Box,
    ExifData,
    FaceAttributes,
    Feature,
    ImageProperties,
    Label,
    PreparedPhoto,
)

JSON_VERSION = 1


def _conf(value: float) -> float:
    return round(value, 4)


def _box(box: Box) -> list[float]:
    return box.as_list()


def exif_json(exif: ExifData, *, include_location: bool = True) -> dict[str, Any]:
    """EXIF as flat keys; absent when unknown. GPS keys only when the caller may show a location."""
    out: dict[str, Any] = {
        "make": exif.make,
        "model": exif.model,
        "lens": exif.lens,
        "datetime_original": exif.datetime_original.isoformat() if exif.datetime_original else None,
        "exposure_time": exif.exposure_time,
        "f_number": exif.f_number,
        "iso": exif.iso,
        "focal_length": exif.focal_length,
        "focal_length_35mm": exif.focal_length_35mm,
        "flash": exif.flash,
        "orientation": exif.orientation,
        "software": exif.software,
    }
    if exif.gps is not None and include_location:
        out.update(
            latitude=exif.gps.latitude,
            longitude=exif.gps.longitude,
            altitude=exif.gps.altitude,
            direction=exif.gps.direction,
        )
    return {key: value for key, value in out.items() if value is not None}


def _attributes(attributes: FaceAttributes) -> dict[str, Any]:
    out: dict[str, Any] = {
        "age_low": attributes.age_low,
        "age_high": attributes.age_high,
        "smiling": attributes.smiling,
        "eyeglasses": attributes.eyeglasses,
        "sunglasses": attributes.sunglasses,
        "gender": attributes.gender,
        "beard": attributes.beard,
        "mustache": attributes.mustache,
        "eyes_open": attributes.eyes_open,
        "mouth_open": attributes.mouth_open,
        "emotions": [{"name": e.name, "confidence": _conf(e.confidence)} for e in attributes.emotions],
    }
    if attributes.pose is not None:
        out["pose"] = {
            "roll": attributes.pose.roll,
            "yaw": attributes.pose.yaw,
            "pitch": attributes.pose.pitch,
        }
    return {key: value for key, value in out.items() if value is not None and value != []}


def _properties(properties: ImageProperties | None) -> dict[str, Any] | None:
    if properties is None:
        return None
    return {
        "brightness": properties.brightness,
        "sharpness": properties.sharpness,
        "contrast": properties.contrast,
        "dominant_colors": [
            {"hex": c.hex, "pixel_share": _conf(c.pixel_share), "name": c.name}
            for c in properties.dominant_colors
        ],
    }


def _label(label: Label) -> dict[str, Any]:
    """A label; a describer's tag says `"source": "describe"` and has no confidence (null)."""
    if label.source == DESCRIBE_SOURCE:
        return {
            "name": label.name,
            "confidence": None,
            "parents": [],
            "categories": [],
            "source": label.source,
        }
    return {
        "name": label.name,
        "confidence": _conf(label.confidence),
        "parents": list(label.parents),
        "categories": list(label.categories),
    }


def _description(analysis: Analysis) -> dict[str, Any]:
    """The `description` key only when a caption came back: absent means "not run" or "failed"
    (a failure is listed in `errors` under the feature "describe")."""
    found = analysis.description
    if found is None:
        return {}
    return {"description": {"text": found.text, "backend": found.backend, "model": found.model}}


def _celebrities(analysis: Analysis) -> dict[str, Any]:
    """The `celebrities` key only when RecognizeCelebrities ran (an opt-in, billed feature):
    absent means "not asked", [] means "asked, nobody recognised"."""
    if Feature.CELEBRITIES not in analysis.features:
        return {}
    found = [
        {"name": c.name, "confidence": _conf(c.confidence), "box": _box(c.box)} for c in analysis.celebrities
    ]
    return {"celebrities": found}


def analysis_json(
    analysis: Analysis,
    prepared: PreparedPhoto,
    *,
    file: str,
    annotated: str | None,
    include_location: bool = True,
) -> dict[str, Any]:
    """One photo's result as the documented JSON document.

    `faces` is in `Analysis.faces` order, which is the faces' numbering: the n-th entry is "#n" on
    the annotated image and in the summary.
    """
    return {
        "version": JSON_VERSION,
        "file": file,
        "annotated": annotated,
        "backend": analysis.backend,
        "features": sorted(f.value for f in analysis.features),
        **_description(analysis),
        "labels": [_label(label) for label in analysis.labels],
        "objects": [
            {"name": o.name, "confidence": _conf(o.confidence), "box": _box(o.box)} for o in analysis.objects
        ],
        "faces": [
            {"box": _box(f.box), "confidence": _conf(f.confidence), "attributes": _attributes(f.attributes)}
            for f in analysis.faces
        ],
        "text": [
            {"text": t.text, "confidence": _conf(t.confidence), "box": _box(t.box)} for t in analysis.text
        ],
        "moderation": [
            # A label at the top of the taxonomy has no parent: null, not "".
            {"name": m.name, "confidence": _conf(m.confidence), "parent": m.parent or None}
            for m in analysis.moderation
        ],
        **_celebrities(analysis),
        "properties": _properties(analysis.properties),
        "errors": [
            {"feature": e.feature.value, "kind": e.kind.value, "message": e.message} for e in analysis.errors
        ],
        "exif": exif_json(prepared.exif, include_location=include_location),
        "image": {
            "width": prepared.width,
            "height": prepared.height,
            "original_width": prepared.original_width,
            "original_height": prepared.original_height,
            "format": prepared.source_format,
        },
    }


def error_json(file: str, reason: str, message: str) -> dict[str, Any]:
    """The document for a photo that could not be analysed, so scripts see every input once."""
    return {"version": JSON_VERSION, "file": file, "error": {"reason": reason, "message": message}}
