"""Plain-text rendering of a `Summary`, for the CLI and logs.

One short line group per section, nothing for sections that are absent. Values come from the
photo, so every output line is passed through `one_line`: a newline, carriage return, ANSI escape
or bidi override inside a value turns into a visible, harmless character instead of starting a
new line, recolouring the terminal or reordering the text.
"""

from __future__ import annotations

import unicodedata

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
INDENT = "  "

# Joiners shape emoji and several scripts; they cannot move the cursor or reorder text.
_HARMLESS_FORMAT = frozenset({"\u200c", "\u200d"})


def one_line(text: str) -> str:
    """Replace every control, format and line/paragraph-separator character with a space.

    This covers C0/C1 controls (newline, ESC that starts ANSI sequences, DEL), Unicode line
    separators and bidirectional overrides, which could otherwise fake or hide parts of a line,
    and lone surrogates, which would make printing to a UTF-8 terminal raise.
    """
    out = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp", "Cs") or (category == "Cf" and char not in _HARMLESS_FORMAT):
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def _more(count: int, noun: str = "more") -> str:
    return f" (+{count} {noun})" if count > 0 else ""


def _section_lines(section: Section) -> list[str]:
    match section:
        case DescriptionSection(text=text):
            return [f"Description: {text}"]
        case ModerationSection(items=items):
            listed = ", ".join(f"{i.name} {i.percent}" for i in items)
            return [f"CONTENT WARNING: {listed}"]
        case LabelsSection(items=items, omitted=omitted):
            return ["Labels: " + ", ".join(i.text for i in items) + _more(omitted)]
        case ObjectsSection():
            return [f"Objects: {section.phrase}"]
        case FacesSection(faces=faces):
            noun = "face" if len(faces) == 1 else "faces"
            lines = [f"Faces: {len(faces)} {noun}"]
            lines += [f"{INDENT}{f.tag} {f.description}".rstrip() for f in faces]
            return lines
        case CelebritiesSection(items=items):
            return ["Celebrities: " + ", ".join(f"{i.name} {i.percent}" for i in items)]
        case TextSection(lines=text_lines, omitted=omitted):
            total = len(text_lines) + omitted
            head = f"Text ({total} line{'s' if total != 1 else ''}" + (
                f", first {len(text_lines)} shown):" if omitted else "):"
            )
            return [head, *(f"{INDENT}{line}" for line in text_lines)]
        case CameraSection():
            return _camera_lines(section)
        case LocationSection():
            details = [section.coordinates]
            details += [t for t in (section.altitude_text, section.direction_text) if t]
            return [f"Location: {SEPARATOR.join(details)}", f"{INDENT}Map: {section.map_url}"]
        case HiddenLocationSection(note=note):
            return [f"Location: {note}"]
        case PropertiesSection(colors=colors):
            parts = []
            if section.words:
                parts.append(", ".join(section.words))
            if colors:
                parts.append("colours " + ", ".join(f"{c.label} {c.percent}" for c in colors))
            return [f"Image: {'; '.join(parts)}"]
        case RecognizerSection():
            return _recognizer_lines(section)


def _camera_lines(section: CameraSection) -> list[str]:
    lines = []
    head = [a for a in (section.camera, *section.settings) if a]
    if head:
        lines.append(f"Camera: {SEPARATOR.join(head)}")
    if section.lens:
        lines.append(f"Lens: {section.lens}")
    if section.taken_text:
        lines.append(f"Taken: {section.taken_text}")
    if section.software:
        lines.append(f"Software: {section.software}")
    return lines


def _recognizer_lines(section: RecognizerSection) -> list[str]:
    lines = [f"Recognizer: {section.backend}"]
    if section.found_nothing:
        lines.append(f"{INDENT}Nothing recognised in this photo.")
    for failure in section.failed:
        lines.append(f"{INDENT}Failed: {failure.name} ({failure.kind}: {failure.message})")
    if section.unsupported:
        names = ", ".join(section.unsupported_names)
        lines.append(f"{INDENT}Not available with this recognizer: {names}")
    return lines


def render_text(summary: Summary) -> str:
    """The summary as plain text lines, safe to print to a terminal whatever the photo contained."""
    lines: list[str] = []
    for section in summary.sections:
        lines.extend(one_line(line) for line in _section_lines(section))
    return "\n".join(lines)
