"""The describer's one error: no usable answer came back."""

from __future__ import annotations

from core.analysis_types import ErrorKind
from core.errors import RecognizerError


class DescribeFailed(RecognizerError):
    """The model gave no usable answer: down, too slow, throttled, refused, or gibberish.

    `kind` says whose fault it was like a recognizer's feature error; `billed` says whether the
    provider charged for the attempt anyway (an answer that arrived but could not be used), so
    the application keeps a charge only for a call that cost money. The message is friendly and
    never carries the model's output, the API key or the photo.
    """

    def __init__(self, kind: ErrorKind, message: str, *, billed: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.billed = billed
