"""Typed errors with messages meant for the person who sent the photo.

`str(error)` is always safe and friendly enough to show in a chat reply; the class tells the
application whose fault it was (the user's input, or our recognizer) so it can refund quota.
"""

from __future__ import annotations

from typing import Any


def _rebuild(
    kind: type[PhotoDetectiveError], args: tuple[object, ...], state: dict[str, Any]
) -> PhotoDetectiveError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class PhotoDetectiveError(Exception):
    """Base class: every error the core raises on purpose.

    Errors cross process boundaries (photo preparation runs in a process pool), and the default
    exception pickling calls `__init__` with `args`, which does not fit subclasses whose
    constructor takes other arguments; `__reduce__` rebuilds them from their state instead.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class PhotoRejected(PhotoDetectiveError):
    """The input cannot be analysed; the user's own input is at fault.

    `reason` is a short stable code for metrics and tests; the message is for people.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnsupportedFormat(PhotoRejected):
    def __init__(self, looked_like: str) -> None:
        super().__init__(
            "unsupported_format",
            f"That file looks like {looked_like}, not a photo. "
            "Send a JPEG, PNG, WebP, HEIC, AVIF, TIFF, BMP or GIF image.",
        )
        self.looked_like = looked_like


class TooLarge(PhotoRejected):
    """Too many bytes or too many pixels; raised before the pixels are decoded."""


class TooSmall(PhotoRejected):
    pass


class CorruptImage(PhotoRejected):
    """Truncated or damaged data; refused rather than half-processed."""


class RecognizerError(PhotoDetectiveError):
    """The recognizer as a whole could not answer; not the user's fault."""


class RecognizerUnavailable(RecognizerError):
    pass


class RecognizerThrottled(RecognizerError):
    pass
