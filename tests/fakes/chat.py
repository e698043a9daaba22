"""Fakes of the chat platforms' network side: where photos come from and where answers go.

`RecordingReplyPort` stands in for a platform's `bot.ports.ReplyPort`: it keeps every `Outcome` the
application delivered (what the user would see) and can append one JSON line per delivery to a
file, so a test can count the replies a worker *subprocess* sent, even one killed with SIGKILL.
`InMemoryPhotoSource` and `DirectoryPhotoSource` stand in for `bot.ports.PhotoSource`: they serve
bytes by `file_id`, refuse files over `max_bytes` like a real download would, and can be scripted to
fail the way a flaky platform does (`FetchFailed`), so the worker's retry path can be driven.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.photo_requests import AnalysisReply, FileRef, Outcome, PhotoRequest
from bot.ports import Accepted, DeliveryFailed, FetchFailed
from core.errors import TooLarge

#: What a scripted failing `RecordingReplyPort` raises unless told otherwise: a refusal for good.
REFUSED = DeliveryFailed("the platform refused the message", permanent=True)
#: A platform outage (5xx): the answer is worth sending again later.
UNAVAILABLE = DeliveryFailed("HTTP 502", permanent=False)


def describe(outcome: Outcome) -> dict[str, Any]:
    """The JSON-able summary of one delivery: who was answered, with what kind of reply."""
    request = outcome.request
    line: dict[str, Any] = {
        "platform": request.platform,
        "user_id": request.user_id,
        "chat_id": request.chat_id,
        "message_id": request.message_id,
        "key": request.idempotency_key,
        "pid": os.getpid(),
    }
    if isinstance(outcome, AnalysisReply):
        line.update(
            kind="analysis",
            labels=[label.name for label in outcome.analysis.labels],
            jpeg_bytes=len(outcome.annotated_jpeg),
        )
    else:
        line.update(
            kind="failure", reason=outcome.reason, message=outcome.message, user_fault=outcome.user_fault
        )
    return line


class RecordingReplyPort:
    """A `ReplyPort` that records what users would see instead of sending it.

    `log_path`: also append one JSON line per delivery there (O_APPEND, so lines from several
    processes never interleave). `fail_times`: the next N deliveries raise `failure` (a
    `bot.ports.DeliveryFailed`, permanent by default) after being recorded in `attempts`.
    `delay_s`: wait this long before recording, to keep a delivery in progress. `cut_short_times`:
    the next N deliveries are recorded and accepted (their first message arrived), then raise, as
    a follow-up message the platform refused would.
    """

    def __init__(
        self,
        log_path: Path | None = None,
        *,
        fail_times: int = 0,
        delay_s: float = 0.0,
        cut_short_times: int = 0,
        failure: DeliveryFailed = REFUSED,
    ) -> None:
        self.log_path = log_path
        self.fail_times = fail_times
        self.failure = failure
        self.cut_short_times = cut_short_times
        self.delay_s = delay_s
        self.delivered: list[Outcome] = []
        self.attempts: list[Outcome] = []

    async def deliver(self, outcome: Outcome, accepted: Accepted) -> None:
        self.attempts.append(outcome)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise DeliveryFailed(
                self.failure.reason,
                permanent=self.failure.permanent,
                retry_after_s=self.failure.retry_after_s,
            )
        self.delivered.append(outcome)
        if self.log_path is not None:
            append_line(self.log_path, json.dumps(describe(outcome), sort_keys=True))
        await accepted()
        if self.cut_short_times > 0:
            self.cut_short_times -= 1
            raise DeliveryFailed("the platform refused a follow-up message", permanent=True)

    def replies_to(self, request: PhotoRequest) -> list[Outcome]:
        """Every delivered outcome for one platform message."""
        return [o for o in self.delivered if o.request.idempotency_key == request.idempotency_key]


def append_line(path: Path, line: str) -> None:
    """Append one whole line; O_APPEND writes of one line are atomic across processes."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The deliveries a `RecordingReplyPort` logged to `path` (none when the file does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class _ScriptedSource:
    """What both photo sources share: the size check and scripted platform failures."""

    def __init__(self, *, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.fetched: list[str] = []

    def _read(self, file_id: str) -> bytes:
        raise NotImplementedError

    async def fetch(self, request: PhotoRequest, ref: FileRef, max_bytes: int) -> bytes:
        self.fetched.append(ref.file_id)
        if self.fail_times > 0:
            self.fail_times -= 1
            raise FetchFailed(f"the platform answered 502 for {ref.file_id}")
        data = self._read(ref.file_id)
        if len(data) > max_bytes:
            raise TooLarge(
                "too_many_bytes",
                f"This file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB.",
            )
        return data


class InMemoryPhotoSource(_ScriptedSource):
    """A `PhotoSource` serving photos from a dict of file_id -> bytes."""

    def __init__(self, files: Mapping[str, bytes], *, fail_times: int = 0) -> None:
        super().__init__(fail_times=fail_times)
        self.files = dict(files)

    def _read(self, file_id: str) -> bytes:
        try:
            return self.files[file_id]
        except KeyError:
            raise FetchFailed(f"no file {file_id!r} on the platform") from None


class DirectoryPhotoSource(_ScriptedSource):
    """A `PhotoSource` serving the files of one folder, the file_id being the file name."""

    def __init__(self, folder: Path, *, fail_times: int = 0) -> None:
        super().__init__(fail_times=fail_times)
        self.folder = folder

    def _read(self, file_id: str) -> bytes:
        path = self.folder / file_id
        if path.parent != self.folder or not path.is_file():
            raise FetchFailed(f"no file {file_id!r} on the platform")
        return path.read_bytes()
