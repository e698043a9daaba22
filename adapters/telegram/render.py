"""The photo summary as Telegram HTML, split to Telegram's length limits without cutting a tag in half.

The words come from `bot.presentation` (neutral blocks of styled parts); this module only gives
each part style its Telegram look (`part_span`) and packs the result into messages.

Rendering goes through a tiny markup model instead of string concatenation: a `Line` is a tuple
of `Span`s, each span is plain text with at most one style (bold, italic, code) and an optional
link. Only `span_html` turns spans into markup, and it escapes every span, so a string from the
photo (EXIF, OCR, labels: attacker controlled) cannot open a tag whatever it contains. Spans are
also passed through `core.summary_text.one_line`, so a newline or bidi override inside a value
cannot start a fake line or reorder the text.

Splitting works on the model too: lines are packed into chunks whose *visible* length (what
Telegram counts after parsing entities, in UTF-16 code units) fits the limit: 1024 for the photo
caption, 4096 for each following message. A section is kept together when it fits, a line is cut
only when it alone is too long, and then between spans or inside a span's text, with the span's
tags repeated on both sides. So every chunk is balanced markup by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot import presentation
from bot.presentation import Part, PhotoAnswer, Style
from core.summary_text import one_line
from core.summary_types import Section, Summary

CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
#: Left-over room smaller than this is not worth starting a cut line in; it goes to the next chunk.
MIN_PIECE = 40

COMPRESSED_TIP = (
    "Telegram removed the camera and location data when it compressed this photo. "
    "Send it as a file (📎 → File) to keep them."
)


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text with one optional style ("b", "i", "code") and an optional link.

    Build spans with `text`, `bold`, `italic`, `code` and `link`: they clean the text first.
    """

    text: str
    style: str | None = None
    href: str | None = None


Line = tuple[Span, ...]
Block = tuple[Line, ...]


def _span(value: str, style: str | None = None, href: str | None = None) -> Span:
    return Span(one_line(value), style, one_line(href) if href is not None else None)


def text(value: str) -> Span:
    return _span(value)


def bold(value: str) -> Span:
    return _span(value, "b")


def italic(value: str) -> Span:
    return _span(value, "i")


def code(value: str) -> Span:
    return _span(value, "code")


def link(value: str, href: str) -> Span:
    return _span(value, None, href)


def escape(value: str) -> str:
    """Escape text for Telegram HTML: only &, < and > are special outside attributes."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    return escape(value).replace('"', "&quot;")


def utf16_len(value: str) -> int:
    """Telegram's length unit: UTF-16 code units (an emoji outside the BMP counts as 2)."""
    return len(value.encode("utf-16-le")) // 2


def span_html(span: Span) -> str:
    body = escape(span.text)
    if span.href is not None:
        body = f'<a href="{escape_attribute(span.href)}">{body}</a>'
    if span.style is not None:
        body = f"<{span.style}>{body}</{span.style}>"
    return body


def line_html(line: Line) -> str:
    return "".join(span_html(span) for span in line)


def line_len(line: Line) -> int:
    return sum(utf16_len(span.text) for span in line)


def block_len(block: Block) -> int:
    return sum(line_len(line) for line in block) + max(len(block) - 1, 0)


# ---------------------------------------------------------------------------------------------
# Neutral blocks (bot.presentation) -> spans
# ---------------------------------------------------------------------------------------------

_ICONS = {"warning": "⚠️ "}


def part_span(part: Part) -> Span:
    """The Telegram look of one neutral part (see `bot.presentation.Style`)."""
    match part.style:
        case Style.TITLE | Style.TAG:  # a USER part falls through to plain text
            return bold(part.text)
        case Style.BULLET:
            return text("  ")
        case Style.ICON:
            return text(_ICONS.get(part.text, ""))
        case Style.QUOTE:
            return code(part.text)
        case Style.NOTE:
            return italic(part.text)
        case Style.PLACE | Style.PLAIN if part.href is not None:
            return link(part.text, part.href)
    return text(part.text)


def neutral_block(block: presentation.Block) -> Block:
    return tuple(tuple(part_span(part) for part in line) for line in block.lines)


def section_block(section: Section) -> Block:
    """One section of the summary as lines of spans."""
    return neutral_block(presentation.section_block(section))


def summary_blocks(summary: Summary, *, compressed_tip: bool = False) -> list[Block]:
    """The whole reply text as blocks; `compressed_tip` adds the "send it as a file" advice."""
    return answer_blocks(presentation.summary_blocks(summary), compressed_tip=compressed_tip)


def answer_blocks(neutral: Sequence[presentation.Block], *, compressed_tip: bool = False) -> list[Block]:
    """Neutral blocks as span blocks, with the Telegram-only "send it as a file" advice when asked."""
    blocks = [block for block in (neutral_block(b) for b in neutral) if block]
    if compressed_tip:
        blocks.append(((text("💡 "), italic(COMPRESSED_TIP)),))
    return blocks


def render_answer(
    answer: PhotoAnswer,
    *,
    compressed_tip: bool = False,
    first_limit: int = CAPTION_LIMIT,
    limit: int = MESSAGE_LIMIT,
) -> list[str]:
    """A neutral answer as HTML chunks: the first fits a caption (1024), the rest a message (4096) each."""
    return split_blocks(answer_blocks(answer.blocks, compressed_tip=compressed_tip), first_limit, limit)


def render_summary(
    summary: Summary,
    *,
    compressed_tip: bool = False,
    first_limit: int = CAPTION_LIMIT,
    limit: int = MESSAGE_LIMIT,
) -> list[str]:
    """The summary as HTML chunks: the first fits a caption (1024), the rest a message (4096) each."""
    return split_blocks(summary_blocks(summary, compressed_tip=compressed_tip), first_limit, limit)


# ---------------------------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------------------------


def _cut_text(value: str, room: int) -> tuple[str, str]:
    """Cut `value` so the head fits `room` UTF-16 units, at the last space when there is one."""
    used, end = 0, 0
    for i, char in enumerate(value):
        width = utf16_len(char)
        if used + width > room:
            break
        used += width
        end = i + 1
    head = value[:end]
    space = head.rfind(" ")
    if space > len(head) // 2 and end < len(value):
        head = head[: space + 1]
    if not head and value:  # one character wider than the room (room 1, an astral emoji)
        head = value[:1]
    return head, value[len(head) :]


def split_line(line: Line, room: int, limit: int) -> list[Line]:
    """Cut a too-long line into pieces: the first fits `room`, the others `limit` each.

    Cuts fall between spans where possible, otherwise inside a span's text; a cut span keeps its
    style and link on both sides, so each piece is balanced markup on its own.
    """
    pieces: list[Line] = []
    current: list[Span] = []
    space = room
    queue = list(line)
    while queue:
        span = queue.pop(0)
        size = utf16_len(span.text)
        if size <= space:
            current.append(span)
            space -= size
            continue
        if current and space < min(size, MIN_PIECE):  # hardly any room left: start a new piece
            pieces.append(tuple(current))
            current, space = [], limit
            queue.insert(0, span)
            continue
        head, rest = _cut_text(span.text, max(space, 1))
        current.append(Span(head, span.style, span.href))
        pieces.append(tuple(current))
        current, space = [], limit
        if rest:
            queue.insert(0, Span(rest, span.style, span.href))
    if current:
        pieces.append(tuple(current))
    return [piece for piece in pieces if line_len(piece) > 0]


class _Packer:
    """Greedy packing of lines into chunks, each within its own limit."""

    def __init__(self, first_limit: int, limit: int) -> None:
        self.first_limit = first_limit
        self.limit = limit
        self.chunks: list[list[Line]] = [[]]
        self.used = 0

    @property
    def current_limit(self) -> int:
        return self.first_limit if len(self.chunks) == 1 else self.limit

    def room(self) -> int:
        """What a line added to the current chunk may take (the newline before it counts)."""
        return self.current_limit - self.used - (1 if self.chunks[-1] else 0)

    def new_chunk(self) -> None:
        if self.chunks[-1]:
            self.chunks.append([])
            self.used = 0

    def add(self, line: Line) -> None:
        self.used += line_len(line) + (1 if self.chunks[-1] else 0)
        self.chunks[-1].append(line)

    def add_block(self, block: Block) -> None:
        size = block_len(block)
        if size <= self.room():
            for line in block:
                self.add(line)
            return
        if self.chunks[-1] and size <= self.limit:
            self.new_chunk()
            for line in block:
                self.add(line)
            return
        for line in block:
            self.add_line(line)

    def add_line(self, line: Line) -> None:
        size = line_len(line)
        if size <= self.room():
            self.add(line)
            return
        if self.chunks[-1] and size <= self.limit:
            self.new_chunk()
            self.add(line)
            return
        room = self.room()
        if room < min(size, MIN_PIECE):
            self.new_chunk()
            room = self.room()
        for i, piece in enumerate(split_line(line, room, self.limit)):
            if i:
                self.new_chunk()
            self.add(piece)


def split_blocks(blocks: Sequence[Block], first_limit: int, limit: int) -> list[str]:
    """Pack blocks into HTML chunks: the first within `first_limit`, the rest within `limit` each.

    Limits count visible characters in UTF-16 units, as Telegram does after parsing entities.
    A block (a section) stays in one chunk when it fits one.
    """
    if first_limit < 1 or limit < 1:
        raise ValueError("limits must be positive")
    packer = _Packer(first_limit, limit)
    for block in blocks:
        if block:
            packer.add_block(block)
    chunks = ["\n".join(line_html(line) for line in chunk) for chunk in packer.chunks if chunk]
    return chunks or [escape("(nothing to report)")]


def split_plain(value: str, first_limit: int = MESSAGE_LIMIT, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Plain text (no parse mode) cut to the limits at line ends where possible."""
    lines: list[Block] = [((Span(line),),) for line in value.splitlines() or [""]]
    packer = _Packer(first_limit, limit)
    for block in lines:
        packer.add_block(block)
    return ["\n".join("".join(s.text for s in line) for line in chunk) for chunk in packer.chunks if chunk]
