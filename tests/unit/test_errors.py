"""Errors cross process boundaries (the preparation pool), so they must survive pickling intact."""

from __future__ import annotations

import pickle

import pytest

from core.errors import (
    CorruptImage,
    PhotoRejected,
    RecognizerThrottled,
    TooLarge,
    TooSmall,
    UnsupportedFormat,
)


@pytest.mark.parametrize(
    "error",
    [
        UnsupportedFormat("an HTML page"),
        TooLarge("too_many_pixels", "This image is 65000×65000 pixels; the limit is 100 megapixels."),
        TooSmall("too_small", "This image is 10×10 pixels; it needs at least 80 on each side."),
        CorruptImage("corrupt", "The image data is cut short."),
        RecognizerThrottled("Rekognition is busy."),
    ],
)
def test_errors_round_trip_through_pickle(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
    if isinstance(error, PhotoRejected):
        assert isinstance(copy, PhotoRejected)
        assert copy.reason == error.reason
