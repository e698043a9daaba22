"""The one interface every describer backend implements, like `core.recognizers.base.Recognizer`.

A describer turns the prepared photo (the downsized JPEG without EXIF or GPS) into a caption and
tags, and answers questions about it. It declares where the photo goes (`hosted`): a hosted
model is a third party that sees the photo and bills each call, so the application applies
moderation first (an explicit photo is not sent unless the operator allows it) and counts the
call against the cost cap; a self-hosted one (Ollama on the operator's machine) does neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from core.analysis_types import PreparedPhoto
from core.describe.types import Answer, Description


@runtime_checkable
class Describer(Protocol):
    @property
    def name(self) -> str:
        """The backend's short name shown in JSON output ("bedrock", "openai")."""
        ...

    @property
    def model(self) -> str:
        """The model (or inference profile) id that answers."""
        ...

    @property
    def hosted(self) -> bool:
        """True when the photo leaves the operator's machines for a provider that bills the call."""
        ...

    async def describe(self, photo: PreparedPhoto, labels: Sequence[str]) -> Description:
        """A caption and tags for the photo; `labels` are the recognizer's, given as context.

        Raises `core.describe.types.DescribeFailed` when no usable caption came back.
        """
        ...

    async def ask(self, photo: PreparedPhoto, question: str) -> Answer:
        """The model's answer to `question` (already cleaned and capped) about the photo."""
        ...
