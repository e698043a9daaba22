"""Reading Slack's file objects (from events, files.info and conversations.history) and file links.

A Slack message carries up to ten files, each a dict whose fields depend on where it came from:
events usually include `mimetype` and `size`, files shared from another organisation only say
`file_access: "check_file_info"`, deleted files are `mode: "tombstone"`, and files hidden by a
free plan's history limit are `mode: "hidden_by_limit"`. These helpers answer the questions the
adapter asks of any of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bot.photo_requests import FileRef
from core.summary_text import one_line

SlackFile = Mapping[str, Any]

_UNAVAILABLE_MODES = frozenset({"tombstone", "hidden_by_limit"})
_FILE_ID = r"F[A-Z0-9]{4,}"
_LINK = re.compile(
    rf"""(?:
        /files/[A-Z0-9]+/({_FILE_ID})           # https://acme.slack.com/files/U123/F456/photo.jpg
      | /files-(?:pri|tmb)/[A-Z0-9]+-({_FILE_ID}) # https://files.slack.com/files-pri/T123-F456/photo.jpg
    )""",
    re.VERBOSE,
)
_BARE_ID = re.compile(rf"^<?({_FILE_ID})>?$")
_MAX_NAME = 100


def is_available(file: SlackFile) -> bool:
    """False for deleted, plan-hidden and external (Google Drive...) files: there is nothing to fetch."""
    return file.get("mode") not in _UNAVAILABLE_MODES and not file.get("is_external")


def is_image(file: SlackFile) -> bool | None:
    """True or False from the file's MIME type; None when Slack left it out (check_file_info)."""
    mimetype = file.get("mimetype")
    if not mimetype:
        return None
    return str(mimetype).lower().startswith("image/")


def describe_type(file: SlackFile) -> str:
    """ "a PDF file": how a refusal names a file that is not an image."""
    kind = str(file.get("pretty_type") or file.get("filetype") or file.get("mimetype") or "other")
    kind = one_line(kind).strip()[:40] or "other"
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    return f"{article} {kind} file"


def image_files(files: Iterable[SlackFile], *, include_unknown: bool) -> list[SlackFile]:
    """The files worth analysing: available images, and with `include_unknown` those of unknown type."""
    chosen = []
    for file in files:
        if not file.get("id") or not is_available(file):
            continue
        image = is_image(file)
        if image or (image is None and include_unknown):
            chosen.append(file)
    return chosen


def file_ref(file: SlackFile) -> FileRef:
    """The queue's reference to a Slack file: its id is enough, the source asks files.info later."""
    size = file.get("size")
    name = one_line(str(file.get("name") or file.get("title") or "photo")).strip()[:_MAX_NAME] or "photo"
    return FileRef(
        file_id=str(file["id"]),
        size=size if isinstance(size, int) and size >= 0 else None,
        name=name,
        mime_type=str(file["mimetype"]) if file.get("mimetype") else None,
    )


def parse_file_link(text: str) -> str | None:
    """The file id in a Slack file link (escaped `<...>` or raw) or a bare `F...` id; None otherwise."""
    text = text.strip()
    if match := _BARE_ID.match(text):
        return match.group(1)
    if "slack" not in text.lower():
        return None
    if match := _LINK.search(text):
        return match.group(1) or match.group(2)
    return None


def share_in(file: SlackFile, channel: str) -> tuple[str, str | None] | None:
    """(message ts, thread ts) of the file's share in `channel`, from files.info's `shares`."""
    shares = file.get("shares")
    if not isinstance(shares, Mapping):
        return None
    for visibility in ("public", "private"):
        places = shares.get(visibility)
        if not isinstance(places, Mapping):
            continue
        for share in places.get(channel) or ():
            if isinstance(share, Mapping) and share.get("ts"):
                thread = share.get("thread_ts")
                return str(share["ts"]), str(thread) if thread else None
    return None
