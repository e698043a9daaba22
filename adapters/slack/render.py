"""Slack rendering of the neutral reply (`bot.presentation`): mrkdwn text and Block Kit blocks.

The words and their order come from `bot.presentation`; here each part style gets its Slack look
(titles in bold, bullets, the map link at the end of the location line) and every text is escaped.

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
from collections.abc import Callable, Sequence
from typing import Any

from bot import presentation
from bot.presentation import Block, Line, Part, Style
from core.summary_text import one_line
from core.summary_types import Section, Summary

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


def part_mrkdwn(part: Part, user: Callable[[str], str] = escape) -> str:
    """The Slack look of one neutral part (see `bot.presentation.Style`); its text escaped.

    `user` shows a USER part (a user key): escaped text, or a mention for this workspace's users.
    """
    match part.style:
        case Style.USER:
            return user(part.text)
        case Style.TITLE:
            return f"*{escape(part.text)}*"
        case Style.BULLET:
            return f"{BULLET} "
        case Style.ICON:
            return f":{escape(part.text)}: "
    return escape(part.text)


def line_mrkdwn(line: Line, user: Callable[[str], str] = escape) -> str:
    """One neutral line; a place's map link goes last, after its details (only links we built)."""
    text = "".join(part_mrkdwn(part, user) for part in line)
    for part in line:
        if part.style is Style.PLACE and part.href is not None:
            text += f"{SEPARATOR}{link(part.href, 'map')}"
    return text


def lines_mrkdwn(lines: Sequence[Line], user: Callable[[str], str] = escape) -> str:
    """Neutral lines (a notice or a report from `bot.notices`) as one mrkdwn text."""
    return "\n".join(line_mrkdwn(line, user) for line in lines)


def block_lines(block: Block) -> list[str]:
    return [line_mrkdwn(line) for line in block.lines]


def section_lines(section: Section) -> list[str]:
    """The mrkdwn lines of one section; values escaped, titles in bold."""
    return block_lines(presentation.section_block(section))


def render_mrkdwn(summary: Summary) -> str:
    """The whole summary as one mrkdwn text (the comment on the annotated image)."""
    return answer_mrkdwn(presentation.summary_blocks(summary))


def answer_mrkdwn(blocks: Sequence[Block]) -> str:
    """Neutral blocks as one mrkdwn text."""
    return "\n".join(line for block in blocks for line in block_lines(block))


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
    """Block Kit blocks for a summary (see `answer_blocks`)."""
    return answer_blocks(presentation.summary_blocks(summary))


def answer_blocks(neutral: Sequence[Block]) -> list[dict[str, Any]]:
    """Block Kit blocks: one section per summary section, the recognizer's note as small context.

    Used where a message (not a file comment) carries the summary; Slack wants a plain `text`
    fallback too, which is `answer_mrkdwn` of the same blocks.
    """
    blocks: list[dict[str, Any]] = []
    for block in neutral:
        lines = block_lines(block)
        if not lines:
            continue
        if block.note:
            for text in _chunks(lines, MAX_SECTION_CHARS):
                blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
            continue
        for text in _chunks(lines, MAX_SECTION_CHARS):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if len(blocks) > MAX_BLOCKS:
        blocks = blocks[: MAX_BLOCKS - 1] + blocks[-1:]
    return blocks
