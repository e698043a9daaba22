"""What a results page shows, taken from the neutral reply once, when the worker delivers it.

The page is more than the chat platforms' text: it draws every box itself and links each label,
object, face and line of text to its boxes. So at delivery the `PhotoAnswer` (the summary's
wording, the location rule already applied) and the analysis (the boxes) become one plain `view`
mapping stored with the result, plus the CLI's JSON document for the download. Strings stay raw
here; the templates escape them (autoescaping), never this module.
"""

from __future__ import annotations

from typing import Any, assert_never

from bot.analysis_json import analysis_json
from bot.photo_requests import AnalysisReply
from bot.presentation import Block, PhotoAnswer
from core.analysis_types import Box
from core.summary_types import (
    CameraSection,
    CelebritiesSection,
    DescriptionSection,
    FacesSection,
    HiddenLocationSection,
    LabelsSection,
    LocationSection,
    ModerationSection,
    ObjectsSection,
    PropertiesSection,
    RecognizerSection,
    TextSection,
    format_percent,
)

MAX_ITEM_CHARS = 200
#: Labels that name what face boxes show, so hovering them highlights the faces.
FACE_LABELS = frozenset({"person", "human", "face", "people", "man", "woman", "child", "boy", "girl"})


def _clip(text: str, limit: int = MAX_ITEM_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _box(box_id: str, kind: str, box: Box, name: str) -> dict[str, Any]:
    return {
        "id": box_id,
        "kind": kind,
        "left": round(box.left, 4),
        "top": round(box.top, 4),
        "width": round(box.width, 4),
        "height": round(box.height, 4),
        "name": _clip(name, 60),
    }


def analysis_document(reply: AnalysisReply, name: str) -> dict[str, Any] | None:
    """The CLI's JSON for this photo (same keys), None when the worker did not pass the prepared image."""
    if reply.prepared is None:
        return None
    return analysis_json(
        reply.analysis,
        reply.prepared,
        file=name,
        annotated="annotated.jpg",
        include_location=reply.show_location,
    )


def build_view(reply: AnalysisReply, answer: PhotoAnswer) -> dict[str, Any]:
    """The page's items, each with the ids of its boxes (`b1`, `b2`, ...) on the prepared image.

    Faces are numbered by their place in `Analysis.faces` (core keeps them in reading order and
    that order is the numbering), exactly as the annotated image and the summary number them:
    the summary's face `n` gets the box of `analysis.faces[n - 1]`, never a re-sorted list, so
    "#1" on the page highlights the box drawn as #1.
    """
    analysis = reply.analysis
    boxes: list[dict[str, Any]] = []
    face_ids: list[str] = []
    object_ids: dict[str, list[str]] = {}
    text_items: list[dict[str, Any]] = []

    def next_id() -> str:
        return f"b{len(boxes) + 1}"

    for face in analysis.faces:
        box_id = next_id()
        boxes.append(_box(box_id, "face", face.box, "face"))
        face_ids.append(box_id)
    for obj in analysis.objects:
        box_id = next_id()
        boxes.append(_box(box_id, "object", obj.box, obj.name))
        object_ids.setdefault(_clip(obj.name, 60).casefold(), []).append(box_id)
    for line in analysis.text:
        text = _clip(line.text, 120)
        if not text:
            continue
        box_id = next_id()
        boxes.append(_box(box_id, "text", line.box, text))
        text_items.append({"text": text, "percent": format_percent(line.confidence), "box_ids": [box_id]})

    view: dict[str, Any] = {
        "boxes": boxes,
        "labels": [],
        "labels_omitted": 0,
        "objects": [
            {"name": _object_name(analysis.objects, key), "count": len(ids), "box_ids": ids}
            for key, ids in object_ids.items()
        ],
        "faces": [],
        "text": text_items,
        "moderation": [],
        "celebrities": [],
        "exif": [],
        "location": None,
        "location_hidden": None,
        "properties": None,
        "backend": reply.analysis.backend,
        "description": None,
        "notes": [],
        "unsupported": [],
        "width": reply.width,
        "height": reply.height,
    }
    for section in answer.summary.sections:
        match section:
            case DescriptionSection(text=text, backend=backend, model=model):
                view["description"] = {"text": text, "backend": backend, "model": model}
            case LabelsSection(items=items, omitted=omitted):
                view["labels"] = [
                    {
                        "name": item.name,
                        "percent": item.percent,
                        "box_ids": object_ids.get(item.name.casefold(), [])
                        + (face_ids if item.name.casefold() in FACE_LABELS else []),
                    }
                    for item in items
                ]
                view["labels_omitted"] = omitted
            case FacesSection(faces=faces):
                view["faces"] = [
                    {
                        "tag": face.tag,
                        "description": face.description,
                        "box_ids": [face_ids[face.number - 1]] if 0 < face.number <= len(face_ids) else [],
                    }
                    for face in faces
                ]
            case ModerationSection(items=items):
                view["moderation"] = [
                    {"name": i.name, "percent": i.percent, "parent": i.parent} for i in items
                ]
            case CelebritiesSection(items=items):
                view["celebrities"] = [{"name": i.name, "percent": i.percent} for i in items]
            case CameraSection():
                view["exif"] += _camera_rows(section)
            case LocationSection():
                view["location"] = {
                    "coordinates": section.coordinates,
                    "map_url": section.map_url,
                    "altitude": section.altitude_text,
                    "direction": section.direction_text,
                }
            case HiddenLocationSection(note=note):
                view["location_hidden"] = note
            case PropertiesSection(colors=colors):
                words = list(section.words)
                if colors:
                    words.append("colours " + ", ".join(f"{c.label} {c.percent}" for c in colors))
                view["properties"] = "; ".join(words)
            case RecognizerSection():
                view["backend"] = section.backend
                view["unsupported"] = list(section.unsupported_names)
                if section.found_nothing:
                    view["notes"].append("Nothing recognised in this photo.")
                for failure in section.failed:
                    view["notes"].append(f"Failed: {failure.name} ({failure.kind}: {failure.message})")
            case ObjectsSection() | TextSection():
                pass  # listed from the analysis itself above, each with its boxes
            case _:
                assert_never(section)
    return view


def _object_name(objects: Any, key: str) -> str:
    for obj in objects:
        if _clip(obj.name, 60).casefold() == key:
            return _clip(obj.name, 60)
    return key


def _camera_rows(section: CameraSection) -> list[list[str]]:
    rows: list[list[str]] = []
    if section.camera:
        rows.append(["Camera", section.camera])
    if section.lens:
        rows.append(["Lens", section.lens])
    if section.settings:
        rows.append(["Exposure", " · ".join(section.settings)])
    if section.taken_text:
        rows.append(["Taken", section.taken_text])
    if section.software:
        rows.append(["Software", section.software])
    return rows


def blocks_json(blocks: tuple[Block, ...]) -> list[dict[str, Any]]:
    """The neutral blocks as JSON, for the page's plain summary (each part escaped by the template)."""
    return [
        {
            "note": block.note,
            "lines": [
                [{"text": p.text, "style": str(p.style), "href": p.href} for p in line]
                for line in block.lines
            ],
        }
        for block in blocks
    ]
