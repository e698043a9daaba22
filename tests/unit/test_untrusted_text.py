"""clean_text: one safe printable line out of any attacker-supplied string or bytes."""

from __future__ import annotations

import pytest

from core.untrusted_text import ELLIPSIS, clean_text, decode_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Canon", "Canon"),
        ("  OLYMPUS CORPORATION    ", "OLYMPUS CORPORATION"),
        ("GoPro\x00\x00\x00\x00", "GoPro"),
        ("line one\nline two\r\n\tend", "line one line two end"),
        ("a  \u00a0\u2003 b", "a b"),  # every kind of space collapses to one
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),  # terminal escapes lose their ESC
        ("abc\u202edcba", "abcdcba"),  # a bidi override cannot flip the rest of a message
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("bell\x07 and delete\x7f and C1\x85 and \x9b", "bell and delete and C1 and"),
        ("Cafe\u0301", "Café"),  # NFC: the combining accent joins its letter
        ("Zoë 📷", "Zoë 📷"),
    ],
)
def test_cleans_strings(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "   ", "\x00\x00\x00", "\t\n\r", "\u200b\u202e", b"", b"\x00 \x00", None]
)
def test_nothing_printable_gives_none(raw: str | bytes | None) -> None:
    assert clean_text(raw) is None


def test_bytes_are_decoded_as_utf8_when_valid() -> None:
    assert clean_text("Ærøskøbing ©".encode()) == "Ærøskøbing ©"


def test_invalid_utf8_falls_back_to_latin1_without_raising() -> None:
    assert clean_text(b"Caf\xe9 \xff\xfe ok") == "Café ÿþ ok"
    assert decode_text(b"\xc3\x28") == "Ã("


def test_long_text_is_capped_with_an_ellipsis() -> None:
    cleaned = clean_text("x" * 10_000)
    assert cleaned is not None
    assert len(cleaned) == 200
    assert cleaned.endswith(ELLIPSIS)


def test_cap_is_configurable_and_does_not_end_in_a_space() -> None:
    assert clean_text("one two three", max_length=8) == "one two" + ELLIPSIS
    assert clean_text("short", max_length=8) == "short"
    assert clean_text("anything", max_length=0) is None


def test_short_text_after_long_padding_is_still_found() -> None:
    assert clean_text("\x00" * 10_000 + "Nikon") == "Nikon"
    assert clean_text(b" " * 10_000 + b"Nikon") == "Nikon"


def test_megabytes_of_input_are_bounded() -> None:
    # Only a bounded prefix is scanned, so hostile multi-megabyte values cost little.
    cleaned = clean_text("\u202e" * 5_000_000 + "tail")
    assert cleaned is None
