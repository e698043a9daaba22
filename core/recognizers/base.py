"""The one interface every recognizer backend implements.

A backend declares what it can do (`capabilities`) so the application can tell users what a
deployment does not detect, and runs only the requested features it has. A feature that fails
is reported in `Analysis.errors` while the others still come back; only a failure of the whole
backend raises `core.errors.RecognizerError`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.analysis_types import Analysis, Feature, PreparedPhoto


@runtime_checkable
class Recognizer(Protocol):
    @property
    def name(self) -> str:
        """Short backend name shown to users and in JSON output ("rekognition", "local")."""
        ...

    @property
    def capabilities(self) -> frozenset[Feature]:
        """The features this backend can run at all."""
        ...

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        """Run `features & capabilities` on the prepared photo and return one Analysis."""
        ...


class CallGate(Protocol):
    """Admits a cloud call when the account's rate limit allows it; shared by every replica.

    An account's quota (calls per second per API) is shared by every process using it, so the
    gate lives outside the recognizer (in Redis or a SQLite file, built by the application) and
    the recognizer only waits its turn before each call instead of retrying into throttling.
    """

    def wait_turn(self, operation: str) -> None:
        """Block until `operation` may be called; raise `core.errors.RecognizerThrottled` rather
        than wait longer than the gate's bound (the job is retried later)."""
        ...


class OpenGate:
    """Admits every call at once: no shared limit configured (or a test that wants none)."""

    def wait_turn(self, operation: str) -> None:
        """Return immediately."""


class NullRecognizer:
    """Runs nothing: for `--features none`, and when no backend is configured at all."""

    name = "none"
    capabilities: frozenset[Feature] = frozenset()

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        """Return an empty analysis, so EXIF and preparation still work without any recognizer."""
        return Analysis(backend=self.name, features=frozenset())
