"""Cleaning of untrusted text (EXIF fields, OCR lines) before anything else touches it.

Whatever a photo carries is attacker controlled: camera fields may hold NULs, terminal escapes,
bidi overrides that flip the text around them, invalid UTF-8 or megabytes of padding. Every such
string goes through `clean_text` once, where it enters the program, so later code (summaries,
HTML/mrkdwn escaping, logs) only ever sees one short, printable line.
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_MAX_LENGTH = 200
ELLIPSIS = "…"

# Work is bounded: hostile input far longer than anything displayable is not scanned to the end.
_MIN_SCAN = 64 * 1024
_SPACES = re.compile(r" {2,}")


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding without ever failing.

    UTF-8 is tried first because modern cameras and editors write it even in "ASCII" EXIF fields;
    anything else is read as Latin-1, which maps every byte to a character, so nothing raises and
    the C1 control range that invalid sequences often land in is removed by `clean_text` afterwards.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def clean_text(value: str | bytes | None, max_length: int = DEFAULT_MAX_LENGTH) -> str | None:
    """Turn an untrusted string into one safe, printable line, or None when nothing is left.

    Removes NULs, control and format characters (including bidi overrides and zero-width
    characters, which can disguise text in a chat message), turns every kind of whitespace and
    line break into a single space, trims, normalises to NFC and caps the result at `max_length`
    characters (ending in an ellipsis when cut). Bytes are decoded with `decode_text`. The result
    is NOT escaped for HTML or mrkdwn: that stays the job of the code that formats a message.
    """
    if value is None or max_length <= 0:
        return None
    scan = max(_MIN_SCAN, 4 * max_length)
    text = decode_text(value[:scan]) if isinstance(value, bytes) else value[:scan]
    if not text.isprintable():
        # isprintable() is False for every Unicode "Other" (Cc, Cf, Cs, Co, Cn) and "Separator"
        # character except the ASCII space: keep separators as spaces, drop the rest.
        text = "".join(ch if ch.isprintable() else (" " if ch.isspace() else "") for ch in text)
    text = _SPACES.sub(" ", text).strip()
    if not text:
        return None
    text = unicodedata.normalize("NFC", text)
    if len(text) > max_length:
        text = text[: max_length - len(ELLIPSIS)].rstrip() + ELLIPSIS
    return text
