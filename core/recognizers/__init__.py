"""Recognizer backends behind one protocol (see `base`)."""

from core.recognizers.base import NullRecognizer, Recognizer

__all__ = ["NullRecognizer", "Recognizer"]
