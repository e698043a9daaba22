"""The one presentation path: what every platform shows, before any platform's markup.

The worker hands an adapter an `Outcome`; `present` turns it into a `PhotoAnswer` (the annotated
image and the summary as neutral `Block`s) or a `Notice` (a failure, in plain words, with its
reason code). A platform's renderer then only maps the few `Style`s below to its markup (Telegram
HTML, Slack mrkdwn, a web page's templates) and escapes every part's text, because parts hold the
raw strings from the photo (EXIF, OCR, labels: attacker controlled).

The wording, order and grouping of a summary are decided here once, so the platforms cannot drift
apart; the renderers decide how a title, a bullet or a link looks and where messages are split.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from bot.photo_requests import AnalysisReply, FailureReply, Outcome, PhotoRequest
from core.summary import build_summary
from core.summary_types import (
    CameraSection,
    CelebritiesSection,
    DescriptionSection,
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

SEPARATOR = " · "


class Style(enum.StrEnum):
    """What a part is; each renderer picks the look (the Telegram and Slack choices in brackets)."""

    PLAIN = "plain"
    """Ordinary text (as is). A plain part with `href` is a link where the platform allows one."""
    TITLE = "title"
    """A section's name, "Labels:" (bold / *bold*)."""
    TAG = "tag"
    """A short marker naming an item, a face's "#1" (bold / as is)."""
    BULLET = "bullet"
    """The start of an item row; its text is empty (two spaces / "• ")."""
    ICON = "icon"
    """A named symbol; its text is the name, "warning" (⚠️ / :warning:)."""
    QUOTE = "quote"
    """Text read from the photo, shown verbatim (code / as is)."""
    PLACE = "place"
    """Coordinates with a map link in `href` (a link on them / the text, a "map" link at the end)."""
    NOTE = "note"
    """Our remark about the analysis rather than the photo (italic / as is)."""
    USER = "user"
    """A user key ("slack:T1:U2"); a platform may show its own users as mentions (as is / <@U2>)."""


@dataclass(frozen=True, slots=True)
class Part:
    """A run of raw, unescaped text with one style and, for PLAIN and PLACE, an optional link."""

    text: str
    style: Style = Style.PLAIN
    href: str | None = None


Line = tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Block:
    """One section of the summary as lines; `note` marks the recognizer's own block.

    A renderer keeps a block together where it can (Telegram does not split it across messages,
    Slack gives it one Block Kit section, or small print when `note`).
    """

    lines: tuple[Line, ...]
    note: bool = False


@dataclass(frozen=True, slots=True)
class AnnotatedImage:
    """The JPEG with boxes drawn, carrying no EXIF, and its size (platforms limit both)."""

    jpeg: bytes
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class PhotoAnswer:
    """A finished analysis as every platform shows it: the annotated image and the summary.

    `summary` is kept for renderers that need the plain-text fallback (`core.summary_text`);
    `exif_empty` says the photo carried no camera data at all (Telegram suggests sending a file).
    """

    request: PhotoRequest
    image: AnnotatedImage
    summary: Summary
    blocks: tuple[Block, ...]
    exif_empty: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """A short plain-words answer (a failure or a refusal) and its reason code for metrics and logs.

    `text` is ours or the core's friendly message: no markup, but a renderer still escapes it.
    """

    request: PhotoRequest
    reason: str
    text: str


Presentation = PhotoAnswer | Notice


def present(outcome: Outcome) -> Presentation:
    """The neutral reply for a job's outcome; the location rule was already applied by the worker."""
    if isinstance(outcome, FailureReply):
        return Notice(outcome.request, outcome.reason, outcome.message)
    return answer_for(outcome)


def answer_for(reply: AnalysisReply) -> PhotoAnswer:
    summary = build_summary(
        reply.analysis,
        reply.exif,
        show_location=reply.show_location,
        requested=reply.request.features,
        capabilities=reply.capabilities,
    )
    return PhotoAnswer(
        request=reply.request,
        image=AnnotatedImage(reply.annotated_jpeg, reply.width, reply.height),
        summary=summary,
        blocks=summary_blocks(summary),
        exif_empty=reply.exif.is_empty,
    )


def summary_blocks(summary: Summary) -> tuple[Block, ...]:
    """Every section that has something to say, in the summary's order."""
    blocks = (section_block(section) for section in summary.sections)
    return tuple(block for block in blocks if block.lines)


# ---------------------------------------------------------------------------------------------
# Sections -> blocks
# ---------------------------------------------------------------------------------------------


def plain(text: str, href: str | None = None) -> Part:
    return Part(text, Style.PLAIN, href)


def title(text: str) -> Part:
    return Part(text, Style.TITLE)


def note(text: str) -> Part:
    return Part(text, Style.NOTE)


BULLET = Part("", Style.BULLET)


def more(count: int) -> str:
    """ " (+3 more)" after a list that was cut, nothing when it was not."""
    return f" (+{count} more)" if count > 0 else ""


def _joined(items: Iterable[Part], separator: str = ", ") -> list[Part]:
    out: list[Part] = []
    for i, item in enumerate(items):
        if i:
            out.append(plain(separator))
        out.append(item)
    return out


def is_web_link(url: str) -> bool:
    """Only plain links to a host; celebrity URLs come without a scheme ("www.imdb.com/...")."""
    host = url.split("/", 1)[0]
    return (
        "." in host
        and all(c.isalnum() or c in ".-" for c in host)
        and not any(c.isspace() or c in "<>\"'" for c in url)
    )


def _celebrity(name: str, percent: str, urls: tuple[str, ...]) -> list[Part]:
    for url in urls:
        bare = url.removeprefix("https://").removeprefix("http://")
        if is_web_link(bare):
            return [plain(name, "https://" + bare), plain(f" {percent}")]
    return [plain(f"{name} {percent}")]


def section_block(section: Section) -> Block:
    """One section as neutral lines: the wording every platform shows."""
    return Block(_section_lines(section), note=isinstance(section, RecognizerSection))


def _section_lines(section: Section) -> tuple[Line, ...]:
    match section:
        case DescriptionSection(text=text):
            # A model's words, steerable by text in the photo: quoted verbatim like OCR text
            # (Telegram shows it as code, so nothing in it becomes a link or a mention).
            return ((title("Description:"), plain(" "), Part(text, Style.QUOTE)),)
        case ModerationSection(items=items):
            listed = _joined(plain(f"{i.name} {i.percent}") for i in items)
            return ((Part("warning", Style.ICON), title("Content warning:"), plain(" "), *listed),)
        case LabelsSection(items=items, omitted=omitted):
            listed = _joined(plain(i.text) for i in items)
            return ((title("Labels:"), plain(" "), *listed, plain(more(omitted))),)
        case ObjectsSection():
            return ((title("Objects:"), plain(f" {section.phrase}")),)
        case FacesSection(faces=faces):
            noun = "face" if len(faces) == 1 else "faces"
            head: Line = (title("Faces:"), plain(f" {len(faces)} {noun}"))
            rows = tuple(
                (BULLET, Part(face.tag, Style.TAG), plain(f" {face.description}" if face.description else ""))
                for face in faces
            )
            return (head, *rows)
        case CelebritiesSection(items=items):
            parts: list[Part] = [title("Celebrities:"), plain(" ")]
            for i, item in enumerate(items):
                if i:
                    parts.append(plain(", "))
                parts.extend(_celebrity(item.name, item.percent, item.urls))
            return (tuple(parts),)
        case TextSection(lines=lines, omitted=omitted):
            total = len(lines) + omitted
            shown = f", first {len(lines)} shown" if omitted else ""
            head = (title("Text"), plain(f" ({total} line{'s' if total != 1 else ''}{shown}):"))
            return (head, *((BULLET, Part(line, Style.QUOTE)) for line in lines))
        case CameraSection():
            return _camera_lines(section)
        case LocationSection():
            where: list[Part] = [Part(section.coordinates, Style.PLACE, section.map_url)]
            for detail in (section.altitude_text, section.direction_text):
                if detail:
                    where += [plain(SEPARATOR), plain(detail)]
            return ((title("Location:"), plain(" "), *where),)
        case HiddenLocationSection(note=hidden):
            return ((title("Location:"), plain(f" {hidden}")),)
        case PropertiesSection(colors=colors):
            words = []
            if section.words:
                words.append(", ".join(section.words))
            if colors:
                words.append("colours " + ", ".join(f"{c.label} {c.percent}" for c in colors))
            return ((title("Image:"), plain(" " + "; ".join(words))),)
        case RecognizerSection():
            return _recognizer_lines(section)


def _camera_lines(section: CameraSection) -> tuple[Line, ...]:
    lines: list[Line] = []
    head = [a for a in (section.camera, *section.settings) if a]
    if head:
        lines.append((title("Camera:"), plain(" " + SEPARATOR.join(head))))
    if section.lens:
        lines.append((title("Lens:"), plain(f" {section.lens}")))
    if section.taken_text:
        lines.append((title("Taken:"), plain(f" {section.taken_text}")))
    if section.software:
        lines.append((title("Software:"), plain(f" {section.software}")))
    return tuple(lines)


def _recognizer_lines(section: RecognizerSection) -> tuple[Line, ...]:
    lines: list[Line] = [(note(f"Recognizer: {section.backend}"),)]
    if section.found_nothing:
        lines.append((note("Nothing recognised in this photo."),))
    for failure in section.failed:
        lines.append((note(f"Failed: {failure.name} ({failure.kind}: {failure.message})"),))
    if section.unsupported:
        lines.append((note(f"Not available with this recognizer: {', '.join(section.unsupported_names)}"),))
    return tuple(lines)
