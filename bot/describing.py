"""The describe stage: a `Recognizer` that runs the recognizer, then the describer, as one step.

Composing around the recognizer keeps the worker, the CLI and the bench unchanged: they call
`analyze` as before and get an `Analysis` that also carries the caption (`description`) and the
model's tags (labels with `source="describe"`, added where no label of the recognizer names them).
`Feature.DESCRIBE` is in the capabilities only here, so asking for it without a describer runs
nothing, and the quota counts its billed unit only when a describer is configured.

The rules of issue 23 live here, in one place:
- Moderation first: a photo the recognizer flagged explicit is not sent to a hosted model unless
  the operator allows it, and neither is one whose moderation did not run (it could not be
  checked). A self-hosted model sees every photo: it stays on the operator's machines.
- A description that fails, times out or is refused leaves the rest of the analysis intact: it
  is one `FeatureError` (the summary's short note) and never fails the photo.
- The model's output decides nothing: it is text to show, cleaned and capped in `core.describe`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from core.analysis_types import (
    DESCRIBE_SOURCE,
    Analysis,
    ErrorKind,
    Feature,
    FeatureError,
    Label,
    PreparedPhoto,
)
from core.describe.base import Describer
from core.describe.errors import DescribeFailed
from core.recognizers.base import Recognizer

log = logging.getLogger(__name__)

NOT_SENT_EXPLICIT = "not sent to the hosted model: the photo was flagged explicit"
NOT_SENT_UNCHECKED = "not sent to the hosted model: the photo could not be checked for explicit content"


def is_explicit(analysis: Analysis) -> bool:
    """Whether moderation flagged the photo explicit (Rekognition's "Explicit"/"Explicit Nudity"
    and their children, the local recognizer's "Explicit")."""
    return any(
        name.casefold().startswith("explicit")
        for label in analysis.moderation
        for name in (label.name, label.parent)
    )


class DescribingRecognizer:
    """`recognizer` followed by `describer`, behind the `Recognizer` protocol.

    `timeout_s` bounds the description (a slow model costs the caption, not the photo);
    `allow_explicit` lets an explicit photo go to a hosted model.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        describer: Describer,
        *,
        timeout_s: float = 20.0,
        allow_explicit: bool = False,
    ) -> None:
        self.recognizer = recognizer
        self.describer = describer
        self.timeout_s = timeout_s
        self.allow_explicit = allow_explicit

    @property
    def name(self) -> str:
        """The recognizer's name: it is still the one that found the labels, faces and text."""
        return self.recognizer.name

    @property
    def capabilities(self) -> frozenset[Feature]:
        return self.recognizer.capabilities | {Feature.DESCRIBE}

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        """Recognise, then describe when asked; a description failure is listed, never raised."""
        analysis = await self.recognizer.analyze(photo, features - {Feature.DESCRIBE})
        if Feature.DESCRIBE not in features:
            return analysis
        ran = analysis.features | {Feature.DESCRIBE}
        refusal = self._refusal(analysis, features)
        if refusal is not None:
            return replace(analysis, features=ran, errors=(*analysis.errors, refusal))
        labels = [label.name for label in sorted(analysis.labels, key=lambda label: -label.confidence)]
        try:
            description = await asyncio.wait_for(self.describer.describe(photo, labels), self.timeout_s)
        except TimeoutError:
            error = FeatureError(
                Feature.DESCRIBE, ErrorKind.TIMEOUT, f"no description within {self.timeout_s:g} s"
            )
            return replace(analysis, features=ran, errors=(*analysis.errors, error))
        except DescribeFailed as failure:
            log.info("description failed (%s): %s", failure.kind, failure)
            error = FeatureError(Feature.DESCRIBE, failure.kind, str(failure))
            return replace(analysis, features=ran, errors=(*analysis.errors, error))
        named = {label.name.casefold() for label in analysis.labels}
        tags = tuple(
            Label(tag, 0.0, source=DESCRIBE_SOURCE) for tag in description.tags if tag.casefold() not in named
        )
        return replace(
            analysis,
            features=ran,
            labels=(*analysis.labels, *tags),
            description=replace(description, tags=()),
        )

    def _refusal(self, analysis: Analysis, features: frozenset[Feature]) -> FeatureError | None:
        """Why the photo must not go to the model, or None (moderation first, hosted models only)."""
        if not self.describer.hosted or self.allow_explicit:
            return None
        if is_explicit(analysis):
            return FeatureError(Feature.DESCRIBE, ErrorKind.ERROR, NOT_SENT_EXPLICIT)
        checked = Feature.MODERATION in analysis.features and Feature.MODERATION not in analysis.failed
        if not checked:
            return FeatureError(Feature.DESCRIBE, ErrorKind.ERROR, NOT_SENT_UNCHECKED)
        return None
