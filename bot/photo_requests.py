"""What an adapter hands the application, and what the application hands back for delivery.

A request must survive a restart inside the durable queue, so it holds no callables: the photo is
named by a `FileRef` that the platform's `PhotoSource` can fetch later, and the reply goes to a
`reply_to` mapping only that platform's `ReplyPort` interprets. Each adapter owns a frozen type
for its reply target (a `ReplyTarget`) and serialises it at the edge: `to_reply_to()` when it
builds the request, its own `from_reply_to` when it delivers. Nothing else reads the keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.analysis_types import Analysis, ExifData, Feature, PreparedPhoto

JsonScalar = str | int | float | bool | None
#: A reply target as stored in the queue: the serialised form of an adapter's `ReplyTarget`.
ReplyTo = Mapping[str, JsonScalar]


class ReplyTarget(Protocol):
    """Where a platform's answer goes: an adapter's own frozen type, serialised for the queue.

    Its reading counterpart is the adapter's `from_reply_to` classmethod, which must accept every
    version of the mapping ever written (jobs outlive upgrades in the queue).
    """

    def to_reply_to(self) -> dict[str, JsonScalar]: ...


@dataclass(frozen=True)
class FileRef:
    """Where to fetch the photo later. `size` (bytes) lets us refuse before downloading when known."""

    file_id: str
    size: int | None = None
    name: str = "photo"
    mime_type: str | None = None
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "size": self.size,
            "name": self.name,
            "mime_type": self.mime_type,
            "url": self.url,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileRef:
        return cls(
            file_id=str(data["file_id"]),
            size=data.get("size"),
            name=str(data.get("name") or "photo"),
            mime_type=data.get("mime_type"),
            url=data.get("url"),
        )


@dataclass(frozen=True)
class PhotoRequest:
    """One photo a user asked us to analyse, as the application sees it, whatever the platform.

    `message_id` is the platform's own id of the message (or event) that carried the photo: the
    same message delivered twice has the same `idempotency_key` and so makes one job.
    `private` says whether the conversation is one-to-one, which decides e.g. whether a location
    may be shown.
    """

    platform: str
    user_id: str
    chat_id: str
    message_id: str
    file: FileRef
    features: frozenset[Feature]
    reply_to: ReplyTo = field(default_factory=dict)
    workspace_id: str = ""
    private: bool = True

    @property
    def user_key(self) -> str:
        """The quota identity: a user is per platform (and per Slack workspace)."""
        parts = (
            [self.platform, self.workspace_id, self.user_id]
            if self.workspace_id
            else [self.platform, self.user_id]
        )
        return ":".join(parts)

    @property
    def chat_key(self) -> str:
        """The allow/block-list identity of the conversation (or workspace)."""
        return f"{self.platform}:{self.chat_id}"

    @property
    def idempotency_key(self) -> str:
        """Same platform message and file -> same key, so redeliveries make no second job or charge."""
        raw = "\x1f".join(
            [self.platform, self.workspace_id, self.chat_id, self.message_id, self.file.file_id]
        )
        return f"{self.platform}:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"

    def to_json(self) -> dict[str, Any]:
        """The payload stored in the queue; `from_json` must read back every version we ever wrote."""
        return {
            "platform": self.platform,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "file": self.file.to_json(),
            "features": sorted(f.value for f in self.features),
            "reply_to": dict(self.reply_to),
            "workspace_id": self.workspace_id,
            "private": self.private,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhotoRequest:
        return cls(
            platform=str(data["platform"]),
            user_id=str(data["user_id"]),
            chat_id=str(data["chat_id"]),
            message_id=str(data["message_id"]),
            file=FileRef.from_json(data["file"]),
            features=frozenset(Feature(f) for f in data.get("features", [])),
            reply_to=dict(data.get("reply_to", {})),
            workspace_id=str(data.get("workspace_id", "")),
            private=bool(data.get("private", True)),
        )


@dataclass(frozen=True)
class AnalysisReply:
    """A finished analysis ready for a platform renderer: the annotated JPEG and what to say.

    `prepared` is the image the recognizer saw (its JPEG and sizes), for a renderer that draws
    the boxes itself (the web page) or writes the CLI's JSON; chat platforms ignore it.
    """

    request: PhotoRequest
    analysis: Analysis
    exif: ExifData
    annotated_jpeg: bytes
    width: int
    height: int
    capabilities: frozenset[Feature]
    show_location: bool
    prepared: PreparedPhoto | None = None


@dataclass(frozen=True)
class FailureReply:
    """The job could not be done; `message` is friendly and safe to show; `user_fault` decides refunds."""

    request: PhotoRequest
    reason: str
    message: str
    user_fault: bool


Outcome = AnalysisReply | FailureReply
