"""Slack rendering of a `core.summary.Summary`: mrkdwn text and Block Kit blocks.

Every string that came from the photo (EXIF fields, recognised text, labels, the backend's own
messages) goes through `escape` before it is placed in mrkdwn. Slack has no backslash escapes, so:

- `&`, `<` and `>` become `&amp;`, `&lt;` and `&gt;`, as Slack requires. That alone disarms
  `<!channel>`, `<@U123>`, `<#C123>` and `<https://evil|innocent text>`, which only work with
  literal angle brackets, and a `>` that would start a quote.
- The formatting characters `*`, `_`, `~` and `` ` `` are replaced by look-alikes that Slack does
  not interpret (∗ ˍ ∼ ˋ), so a camera named `*URGENT*` cannot make our message bold or hide
  parts of it in a code span.
- `@channel`, `@here` and `@everyone` get a full-width at sign (＠), in case a client or a
  future flag turns bare words into mentions.
- Newlines and other control or bidi characters become spaces (`core.summary_text.one_line`),
  so a value cannot start a fake line of its own.

Our own markup (bold titles, bullets, the map link) is added around the escaped values only.
"""

from __future__ import annotations

import re
from typing import Any

from core.summary import (
    CameraSection,
    CelebritiesSection,
    FacesSection,
    HiddenLocationSection,
    LabelsSection,
    LocationSection,
    ModerationSection,
    ObjectsSection,
    PropertiesSection,
    RecognizerSection,
    Section,
    Summary,
    TextSection,
)
from core.summary_text import one_line

SEPARATOR = " · "
BULLET = "•"

#: Slack's limit for the text of one section block.
MAX_SECTION_CHARS = 3000
#: Slack's limit on blocks per message.
MAX_BLOCKS = 50

_FORMATTING = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)


def escape(text: str) -> str:
    """Make an untrusted string inert inside Slack mrkdwn (see the module docstring for how)."""
    text = one_line(text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.translate(_FORMATTING)
    return _BROADCAST.sub("＠", text)


def escape_lines(text: str) -> str:
    """`escape` line by line: for our own multi-line plain messages, keeping their line breaks."""
    return "\n".join(escape(line) for line in text.split("\n"))


def escape_url(url: str) -> str:
    """A URL for `<url|label>`: only `&`, `<`, `>` and `|` would change its meaning there."""
    return one_line(url).replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")


def link(url: str, label: str) -> str:
    """A mrkdwn link with an escaped label; `url` must be one we built ourselves."""
    return f"<{escape_url(url)}|{escape(label)}>"


def _more(count: int) -> str:
    return f" (+{count} more)" if count > 0 else ""


def section_lines(section: Section) -> list[str]:
    """The mrkdwn lines of one section; values escaped, titles in bold."""
    match section:
        case ModerationSection(items=items):
            listed = ", ".join(f"{escape(i.name)} {i.percent}" for i in items)
            return [f":warning: *Content warning:* {listed}"]
        case LabelsSection(items=items, omitted=omitted):
            listed = ", ".join(f"{escape(i.name)} {i.percent}" for i in items)
            return [f"*Labels:* {listed}{_more(omitted)}"]
        case ObjectsSection():
            return [f"*Objects:* {escape(section.phrase)}"]
        case FacesSection(faces=faces):
            noun = "face" if len(faces) == 1 else "faces"
            lines = [f"*Faces:* {len(faces)} {noun}"]
            for face in faces:
                description = escape(face.description)
                lines.append(f"{BULLET} {face.tag} {description}".rstrip())
            return lines
        case CelebritiesSection(items=items):
            return ["*Celebrities:* " + ", ".join(f"{escape(i.name)} {i.percent}" for i in items)]
        case TextSection(lines=text_lines, omitted=omitted):
            total = len(text_lines) + omitted
            shown = f", first {len(text_lines)} shown" if omitted else ""
            head = f"*Text* ({total} line{'s' if total != 1 else ''}{shown}):"
            return [head, *(f"{BULLET} {escape(line)}" for line in text_lines)]
        case CameraSection():
            return _camera_lines(section)
        case LocationSection():
            details = [section.coordinates]
            details += [t for t in (section.altitude_text, section.direction_text) if t]
            where = SEPARATOR.join(escape(d) for d in details)
            return [f"*Location:* {where}{SEPARATOR}{link(section.map_url, 'map')}"]
        case HiddenLocationSection(note=note):
            return [f"*Location:* {escape(note)}"]
        case PropertiesSection(colors=colors):
            parts = []
            if section.words:
                parts.append(escape(", ".join(section.words)))
            if colors:
                parts.append("colours " + ", ".join(f"{escape(c.label)} {c.percent}" for c in colors))
            return [f"*Image:* {'; '.join(parts)}"]
        case RecognizerSection():
            return _recognizer_lines(section)


def _camera_lines(section: CameraSection) -> list[str]:
    lines = []
    head = [escape(a) for a in (section.camera, *section.settings) if a]
    if head:
        lines.append(f"*Camera:* {SEPARATOR.join(head)}")
    if section.lens:
        lines.append(f"*Lens:* {escape(section.lens)}")
    if section.taken_text:
        lines.append(f"*Taken:* {escape(section.taken_text)}")
    if section.software:
        lines.append(f"*Software:* {escape(section.software)}")
    return lines


def _recognizer_lines(section: RecognizerSection) -> list[str]:
    lines = [f"Recognizer: {escape(section.backend)}"]
    if section.found_nothing:
        lines.append("Nothing recognised in this photo.")
    for failure in section.failed:
        lines.append(
            f"Failed: {escape(failure.name)} ({escape(str(failure.kind))}: {escape(failure.message)})"
        )
    if section.unsupported:
        lines.append(f"Not available with this recognizer: {escape(', '.join(section.unsupported_names))}")
    return lines


def render_mrkdwn(summary: Summary) -> str:
    """The whole summary as one mrkdwn text (the comment on the annotated image)."""
    lines: list[str] = []
    for section in summary.sections:
        lines.extend(section_lines(section))
    return "\n".join(lines)


def _chunks(lines: list[str], limit: int) -> list[str]:
    """Join lines into texts of at most `limit` characters, cutting a single over-long line."""
    texts: list[str] = []
    current = ""
    for line in lines:
        line = line if len(line) <= limit else line[: limit - 1] + "…"
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            texts.append(current)
            current = line
        else:
            current = candidate
    if current:
        texts.append(current)
    return texts


def render_blocks(summary: Summary) -> list[dict[str, Any]]:
    """Block Kit blocks: one section per summary section, the recognizer line as small context.

    Used where a message (not a file comment) carries the summary; Slack wants a plain `text`
    fallback too, which is `render_mrkdwn` of the same summary.
    """
    blocks: list[dict[str, Any]] = []
    for section in summary.sections:
        lines = section_lines(section)
        if not lines:
            continue
        if isinstance(section, RecognizerSection):
            for text in _chunks(lines, MAX_SECTION_CHARS):
                blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
            continue
        for text in _chunks(lines, MAX_SECTION_CHARS):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 1] + blocks[-1:]
    return blocks
