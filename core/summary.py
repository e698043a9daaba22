"""Building the platform-neutral summary of one analysed photo.

`build_summary` turns an `Analysis` and the photo's `ExifData` into a `Summary` (the value types
live in `core.summary_types`). Each platform renders it in its own way (plain text for the CLI in
`core.summary_text`, the chat platforms through `bot.presentation`), so the decisions about *what*
to say (which labels, how many text lines, whether the location may be shown, how numbers are
worded) are made once, here, and the renderers only decide *how*.

The section and item types are re-exported from here, where callers have always found them.
"""

from __future__ import annotations

import math

from core.analysis_types import (
    DESCRIBE_SOURCE,
    Analysis,
    ExifData,
    Feature,
)
from core.summary_text import render_text as render_plain
from core.summary_types import (
    _FEATURE_ORDER,
    CameraSection,
    CelebritiesSection,
    CelebrityItem,
    ColorItem,
    DescriptionSection,
    FaceItem,
    FacesSection,
    FailedFeature,
    HiddenLocationSection,
    LabelItem,
    LabelsSection,
    LocationSection,
    ModerationItem,
    ModerationSection,
    ObjectCount,
    ObjectsSection,
    PropertiesSection,
    RecognizerSection,
    Section,
    Summary,
    TextSection,
    _clip,
    feature_name,
    format_camera,
    format_f_number,
    format_focal_length,
    format_percent,
    format_taken,
)

__all__ = [
    "CameraSection",
    "CelebritiesSection",
    "CelebrityItem",
    "ColorItem",
    "DescriptionSection",
    "FaceItem",
    "FacesSection",
    "FailedFeature",
    "HiddenLocationSection",
    "LabelItem",
    "LabelsSection",
    "LocationSection",
    "ModerationItem",
    "ModerationSection",
    "ObjectCount",
    "ObjectsSection",
    "PropertiesSection",
    "RecognizerSection",
    "Section",
    "Summary",
    "TextSection",
    "build_summary",
    "face_items",
    "feature_name",
    "format_camera",
    "format_f_number",
    "format_focal_length",
    "format_percent",
    "format_taken",
    "render_text",
]


def face_items(analysis: Analysis) -> tuple[FaceItem, ...]:
    """Numbered one-line descriptions of the faces: `Analysis.faces` is already in numbering order
    (see `Analysis`), so "#2" here is "#2" on the annotated image and the JSON's second face."""
    return tuple(FaceItem.from_face(n, face) for n, face in enumerate(analysis.faces, start=1))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _moderation(analysis: Analysis, limit: int) -> ModerationSection | None:
    best: dict[str, ModerationItem] = {}
    for m in analysis.moderation:
        name = _clip(m.name, 60)
        key = name.casefold()
        if name and (key not in best or m.confidence > best[key].confidence):
            best[key] = ModerationItem(name, m.confidence, _clip(m.parent, 60))
    items = sorted(best.values(), key=lambda i: -i.confidence)[:limit]
    return ModerationSection(tuple(items)) if items else None


def _labels(analysis: Analysis, limit: int) -> LabelsSection | None:
    """The recognizer's labels by confidence, then the describer's tags no label already names."""
    best: dict[str, LabelItem] = {}
    tags: dict[str, LabelItem] = {}
    for label in analysis.labels:
        name = _clip(label.name, 60)
        key = name.casefold()
        if not name:
            continue
        if label.source == DESCRIBE_SOURCE:
            tags.setdefault(key, LabelItem(name, 0.0, described=True))
        elif key not in best or label.confidence > best[key].confidence:
            best[key] = LabelItem(name, label.confidence)
    ranked = sorted(best.values(), key=lambda i: -i.confidence)
    ranked += [tag for key, tag in tags.items() if key not in best]
    if not ranked:
        return None
    shown = ranked[: max(limit, 0)]
    return LabelsSection(tuple(shown), omitted=len(ranked) - len(shown)) if shown else None


def _objects(analysis: Analysis) -> ObjectsSection | None:
    counts: dict[str, ObjectCount] = {}
    for obj in analysis.objects:
        name = _clip(obj.name, 60)
        if not name:
            continue
        key = name.casefold()
        previous = counts.get(key)
        counts[key] = ObjectCount(
            previous.name if previous else name, (previous.count if previous else 0) + 1
        )
    ranked = sorted(counts.values(), key=lambda c: (-c.count, c.name.casefold()))
    return ObjectsSection(tuple(ranked)) if ranked else None


def _celebrities(analysis: Analysis) -> CelebritiesSection | None:
    seen: dict[str, CelebrityItem] = {}
    for celeb in sorted(analysis.celebrities, key=lambda c: -c.confidence):
        name = _clip(celeb.name, 60)
        if name and name.casefold() not in seen:
            seen[name.casefold()] = CelebrityItem(
                name, celeb.confidence, tuple(_clip(u, 200) for u in celeb.urls)
            )
    return CelebritiesSection(tuple(seen.values())) if seen else None


def _text(analysis: Analysis, max_lines: int, max_chars: int) -> TextSection | None:
    lines = [_clip(line.text, max_chars) for line in analysis.text]
    lines = [line for line in lines if line]
    if not lines:
        return None
    shown = lines[: max(max_lines, 0)]
    return TextSection(tuple(shown), omitted=len(lines) - len(shown)) if shown else None


def _camera(exif: ExifData) -> CameraSection | None:
    def text(value: str | None) -> str | None:
        return _clip(value) or None if value else None

    section = CameraSection(
        camera=text(format_camera(exif.make, exif.model)),
        lens=text(exif.lens),
        focal_length=_finite(exif.focal_length),
        focal_length_35mm=_finite(exif.focal_length_35mm),
        f_number=_finite(exif.f_number),
        exposure_time=_finite(exif.exposure_time),
        iso=exif.iso,
        flash=text(exif.flash),
        software=text(exif.software),
        taken=exif.datetime_original,
    )
    if (
        section.camera
        or section.lens
        or section.settings
        or section.flash
        or section.software
        or section.taken
    ):
        return section
    return None


def _location(exif: ExifData, show: bool) -> LocationSection | HiddenLocationSection | None:
    gps = exif.gps
    if gps is None:
        return None
    if not show:
        return HiddenLocationSection()
    lat, lon = _finite(gps.latitude), _finite(gps.longitude)
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None  # a corrupt position is not worth a map link
    return LocationSection(lat, lon, altitude=_finite(gps.altitude), direction=_finite(gps.direction))


def _properties(analysis: Analysis, max_colors: int) -> PropertiesSection | None:
    props = analysis.properties
    if props is None:
        return None
    colors = sorted(props.dominant_colors, key=lambda c: -c.pixel_share)[: max(max_colors, 0)]
    section = PropertiesSection(
        brightness=_finite(props.brightness),
        sharpness=_finite(props.sharpness),
        contrast=_finite(props.contrast),
        colors=tuple(ColorItem(_clip(c.hex, 9), _clip(c.name, 30), c.pixel_share) for c in colors),
    )
    return section if section.words or section.colors else None


def _recognizer(
    analysis: Analysis,
    requested: frozenset[Feature],
    capabilities: frozenset[Feature] | None,
    found_anything: bool,
) -> RecognizerSection:
    failed = tuple(
        FailedFeature(e.feature, e.kind, _clip(e.message, 200))
        for e in sorted(analysis.errors, key=lambda e: _FEATURE_ORDER.index(e.feature))
    )
    unsupported: tuple[Feature, ...] = ()
    if capabilities is not None:
        # A describer is the operator's choice, not something this recognizer lacks: not listed.
        unsupported = tuple(
            f
            for f in _FEATURE_ORDER
            if f in requested and f not in capabilities and f is not Feature.DESCRIBE
        )
    found_nothing = bool(analysis.features) and not analysis.errors and not found_anything
    return RecognizerSection(
        backend=_clip(analysis.backend, 40) or "unknown",
        failed=failed,
        unsupported=unsupported,
        found_nothing=found_nothing,
    )


def build_summary(
    analysis: Analysis,
    exif: ExifData,
    *,
    show_location: bool,
    max_labels: int = 8,
    max_text_lines: int = 6,
    max_text_chars: int = 80,
    max_moderation: int = 5,
    max_colors: int = 3,
    requested: frozenset[Feature] = frozenset(),
    capabilities: frozenset[Feature] | None = None,
) -> Summary:
    """Decide what to tell about a photo, once for every platform.

    `requested` is what the user or the deployment asked for and `capabilities` what the backend
    can do at all; their difference becomes "not available with this recognizer" (pass None
    for `capabilities` to say nothing about it). `show_location` comes from the settings: when
    False the summary only says that a location exists.
    """
    faces = face_items(analysis)
    described = analysis.description
    content: list[Section | None] = [
        DescriptionSection(described.text, described.backend, described.model) if described else None,
        _moderation(analysis, max_moderation),
        _labels(analysis, max_labels),
        _objects(analysis),
        FacesSection(faces) if faces else None,
        _celebrities(analysis),
        _text(analysis, max_text_lines, max_text_chars),
    ]
    found = [s for s in content if s is not None]
    properties = _properties(analysis, max_colors)
    sections: list[Section] = [
        *found,
        *(s for s in (_camera(exif), _location(exif, show_location), properties) if s is not None),
    ]
    sections.append(_recognizer(analysis, requested, capabilities, bool(found) or properties is not None))
    return Summary(tuple(sections))


def render_text(summary: Summary) -> str:
    """The plain-text rendering for the CLI (see `core.summary_text`); kept here for callers."""
    return render_plain(summary)
