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


class NullRecognizer:
    """Runs nothing: for `--features none`, and when no backend is configured at all."""

    name = "none"
    capabilities: frozenset[Feature] = frozenset()

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        """Return an empty analysis, so EXIF and preparation still work without any recognizer."""
        return Analysis(backend=self.name, features=frozenset())
