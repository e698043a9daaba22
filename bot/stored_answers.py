"""A finished answer written into the queue while its platform is down, and read back to send it.

An answer that could not be delivered (Telegram answering 5xx, Slack rate-limiting) waits in the
job's queue record, so the photo is neither analysed nor charged again when the platform is back,
whichever worker or process picks the job up (see `JobQueue.defer`). The record is JSON, not
pickle: the queue may be a Redis that other hosts write to, and reading it must never run code.
Only the types an `Outcome` is made of are read back, walked by their annotations.

Size: an analysis is a few KB; the annotated JPEG (about 100-400 KB) dominates and is stored as
base64 (a third more). The prepared JPEG is kept only for ports that show it (the web page), so a
chat answer waiting out an outage costs about one annotated image.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import io
import json
import types
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image

from bot.photo_requests import AnalysisReply, FailureReply, Outcome, PhotoRequest
from core.analysis_types import Analysis, ExifData, Feature, PreparedPhoto

FORMAT_VERSION = 1


class UnreadableAnswer(ValueError):
    """A stored answer that this version cannot read (written by a newer one, or damaged)."""


@dataclass(frozen=True)
class StoredAnswer:
    """An answer kept for a later delivery, and what the job becomes once it is delivered.

    `dead_error` is set when the answer is a failure notice for a job that is over (its attempts
    ran out): delivered, the job becomes a dead letter with that error instead of done.
    """

    outcome: Outcome
    dead_error: str | None = None


def dump_answer(answer: StoredAnswer, *, keep_prepared: bool) -> str:
    """The JSON text of `answer`; `keep_prepared` False drops the prepared image (see module doc)."""
    outcome = answer.outcome
    body: dict[str, Any] = {"request": outcome.request.to_json()}
    if isinstance(outcome, AnalysisReply):
        prepared = outcome.prepared if keep_prepared else None
        body.update(
            kind="analysis",
            analysis=_encode(outcome.analysis),
            exif=_encode(outcome.exif),
            annotated_jpeg=_b64(outcome.annotated_jpeg),
            width=outcome.width,
            height=outcome.height,
            capabilities=sorted(f.value for f in outcome.capabilities),
            show_location=outcome.show_location,
            prepared=None if prepared is None else _encode_prepared(prepared),
        )
    else:
        body.update(
            kind="failure", reason=outcome.reason, message=outcome.message, user_fault=outcome.user_fault
        )
    document = {"version": FORMAT_VERSION, "outcome": body, "dead_error": answer.dead_error}
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def load_answer(text: str) -> StoredAnswer:
    """Read back what `dump_answer` wrote; `UnreadableAnswer` for anything else."""
    try:
        document = json.loads(text)
        if document.get("version") != FORMAT_VERSION:
            raise UnreadableAnswer(f"stored answer version {document.get('version')!r} is not known")
        body = document["outcome"]
        request = PhotoRequest.from_json(body["request"])
        outcome: Outcome
        if body["kind"] == "analysis":
            prepared = body.get("prepared")
            outcome = AnalysisReply(
                request=request,
                analysis=_decode(Analysis, body["analysis"]),
                exif=_decode(ExifData, body["exif"]),
                annotated_jpeg=base64.b64decode(body["annotated_jpeg"]),
                width=int(body["width"]),
                height=int(body["height"]),
                capabilities=_decode(frozenset[Feature], body["capabilities"]),
                show_location=bool(body["show_location"]),
                prepared=None if prepared is None else _decode_prepared(prepared),
            )
        elif body["kind"] == "failure":
            outcome = FailureReply(
                request, str(body["reason"]), str(body["message"]), bool(body["user_fault"])
            )
        else:
            raise UnreadableAnswer(f"unknown answer kind {body['kind']!r}")
        dead_error = document.get("dead_error")
        return StoredAnswer(outcome, None if dead_error is None else str(dead_error))
    except UnreadableAnswer:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
        raise UnreadableAnswer(f"stored answer unreadable: {type(exc).__name__}: {exc}") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode_prepared(prepared: PreparedPhoto) -> dict[str, Any]:
    return {
        "jpeg": _b64(prepared.jpeg),
        "source_format": prepared.source_format,
        "original_width": prepared.original_width,
        "original_height": prepared.original_height,
        "orientation": prepared.orientation,
        "exif": _encode(prepared.exif),
    }


def _decode_prepared(data: dict[str, Any]) -> PreparedPhoto:
    """The prepared photo again; its pixels come from its own JPEG (same size, as `PreparedPhoto` says)."""
    jpeg = base64.b64decode(data["jpeg"])
    return PreparedPhoto(
        image=Image.open(io.BytesIO(jpeg)),
        jpeg=jpeg,
        source_format=str(data["source_format"]),
        original_width=int(data["original_width"]),
        original_height=int(data["original_height"]),
        orientation=int(data["orientation"]),
        exif=_decode(ExifData, data["exif"]),
    )


def _encode(value: Any) -> Any:
    """Frozen dataclasses of plain values to JSON: fields by name, tuples and sets as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (frozenset, set)):
        return sorted(_encode(v) for v in value)
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in an answer")


def _decode(kind: Any, data: Any) -> Any:
    """The inverse of `_encode`, guided by the annotation `kind` (only known shapes are built)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if data is None:
            return None
        if len(options) != 1:
            raise UnreadableAnswer(f"ambiguous stored type {kind!r}")
        return _decode(options[0], data)
    if origin is tuple:
        (item, *_rest) = typing.get_args(kind)
        return tuple(_decode(item, v) for v in data)
    if origin is frozenset:
        (item,) = typing.get_args(kind)
        return frozenset(_decode(item, v) for v in data)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        values = {
            f.name: _decode(hints[f.name], data[f.name])
            for f in dataclasses.fields(kind)
            if f.init and f.name in data
        }
        return kind(**values)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind(data)
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is float:
        return float(data)
    if kind in (str, int, bool):
        if not isinstance(data, kind):
            raise UnreadableAnswer(f"expected {kind.__name__}, found {type(data).__name__}")
        return data
    raise UnreadableAnswer(f"cannot read a stored {kind!r}")
