"""Slack mrkdwn and Block Kit rendering of the summary, and the escaping of photo-derived strings."""

from __future__ import annotations

from datetime import datetime

import pytest

from adapters.slack.render import (
    MAX_SECTION_CHARS,
    escape,
    escape_lines,
    link,
    render_blocks,
    render_mrkdwn,
    section_lines,
)
from core.analysis_types import (
    Analysis,
    Box,
    DetectedObject,
    ErrorKind,
    ExifData,
    Face,
    FaceAttributes,
    Feature,
    FeatureError,
    GpsPosition,
    Label,
    ModerationLabel,
    TextLine,
)
from core.summary import (
    CelebritiesSection,
    CelebrityItem,
    ColorItem,
    HiddenLocationSection,
    LocationSection,
    PropertiesSection,
    TextSection,
    build_summary,
)

BOX = Box(0.1, 0.1, 0.2, 0.2)
GPS = GpsPosition(latitude=48.85837, longitude=2.294481, altitude=35.2, direction=270.0)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("Fish & Chips", "Fish &amp; Chips"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here|here> <!everyone>", "&lt;!here|here&gt; &lt;!everyone&gt;"),
        ("<@U123> and <#C123|general>", "&lt;@U123&gt; and &lt;#C123|general&gt;"),
        ("<https://evil.example|Click>", "&lt;https://evil.example|Click&gt;"),
        ("*bold* _it_ ~st~ `code`", "∗bold∗ ˍitˍ ∼st∼ ˋcodeˋ"),
        ("ping @channel @Here @everyone", "ping ＠channel ＠Here ＠everyone"),
        ("bob@example.com", "bob@example.com"),  # only broadcast words lose their at sign
        ("line one\n> quoted\r\nthree", "line one &gt; quoted  three"),
        ("rtl\u202eevil", "rtl evil"),
        ("already &amp; escaped", "already &amp;amp; escaped"),  # text is text, even if it looks escaped
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_escape_lines_keeps_our_line_breaks() -> None:
    assert escape_lines("one <a>\ntwo *b*") == "one &lt;a&gt;\ntwo ∗b∗"


def test_link_escapes_both_parts() -> None:
    assert (
        link("https://x.example/?a=1&b=2|x>", "<map>")
        == "<https://x.example/?a=1&amp;b=2%7Cx%3E|&lt;map&gt;>"
    )


def rich() -> Analysis:
    return Analysis(
        backend="rekognition",
        features=frozenset(Feature) - {Feature.CELEBRITIES},
        labels=(Label("Dog", 0.97), Label("Pet_*", 0.9)),
        objects=(DetectedObject("Person", 0.99, BOX), DetectedObject("Person", 0.98, BOX)),
        faces=(Face(BOX, 0.99, FaceAttributes(age_low=25, age_high=32, smiling=True)),),
        text=(TextLine("OPEN 24/7", 0.99, BOX), TextLine("<!here> free `pizza`", 0.95, BOX)),
        moderation=(ModerationLabel("Alcohol", 0.81),),
        errors=(FeatureError(Feature.PROPERTIES, ErrorKind.THROTTLED, "slow <down>"),),
    )


EXIF = ExifData(
    make="Apple",
    model="iPhone 13 Pro",
    lens="back camera_*",
    datetime_original=datetime(2023, 5, 14, 18, 3),
    exposure_time=1 / 120,
    f_number=1.5,
    iso=50,
    focal_length=5.7,
    gps=GPS,
)


def test_every_section_in_mrkdwn() -> None:
    summary = build_summary(rich(), EXIF, show_location=True, capabilities=frozenset(Feature))
    text = render_mrkdwn(summary)
    assert text.splitlines() == [
        ":warning: *Content warning:* Alcohol 81%",
        "*Labels:* Dog 97%, Petˍ∗ 90%",
        "*Objects:* 2 people",
        "*Faces:* 1 face",
        "• #1 25-32, smiling",
        "*Text* (2 lines):",
        "• OPEN 24/7",
        "• &lt;!here&gt; free ˋpizzaˋ",
        "*Camera:* Apple iPhone 13 Pro · 5.7 mm · f/1.5 · 1/120 s · ISO 50",
        "*Lens:* back cameraˍ∗",
        "*Taken:* 2023-05-14 18:03",
        "*Location:* 48.85837, 2.29448 · 35 m above sea level · facing W (270°) · "
        "<https://www.openstreetmap.org/?mlat=48.85837&amp;mlon=2.29448#map=16/48.85837/2.29448|map>",
        "Recognizer: rekognition",
        "Failed: image quality (throttled: slow &lt;down&gt;)",
    ]


def test_properties_and_celebrities() -> None:
    colors = (ColorItem("#ff0000", "red", 0.4), ColorItem("#00ff00", "", 0.2))
    assert section_lines(PropertiesSection(brightness=0.9, sharpness=0.2, colors=colors)) == [
        "*Image:* very bright, blurry; colours red 40%, #00ff00 20%"
    ]
    celebrity = CelebrityItem("Ada *Example*", 0.98, ("www.example.org/ada",))
    assert section_lines(CelebritiesSection((celebrity,))) == ["*Celebrities:* Ada ∗Example∗ 98%"]


def test_location_hidden_leaves_no_coordinates() -> None:
    summary = build_summary(Analysis(backend="none"), EXIF, show_location=False)
    assert summary.get(HiddenLocationSection) is not None
    text = render_mrkdwn(summary)
    assert "*Location:* The photo carries a GPS location, which is not shown." in text
    assert "48.8" not in text
    assert "openstreetmap" not in text


def test_location_without_altitude_or_direction() -> None:
    assert section_lines(LocationSection(-33.5, 151.25)) == [
        "*Location:* -33.50000, 151.25000 · "
        "<https://www.openstreetmap.org/?mlat=-33.50000&amp;mlon=151.25000#map=16/-33.50000/151.25000|map>"
    ]


def test_unsupported_features_and_nothing_found() -> None:
    empty = Analysis(backend="none", features=frozenset({Feature.LABELS}))
    summary = build_summary(
        empty,
        ExifData(),
        show_location=True,
        requested=frozenset({Feature.LABELS, Feature.FACES}),
        capabilities=frozenset({Feature.LABELS}),
    )
    assert render_mrkdwn(summary).splitlines() == [
        "Recognizer: none",
        "Nothing recognised in this photo.",
        "Not available with this recognizer: face analysis",
    ]


def test_blocks_mirror_the_text() -> None:
    summary = build_summary(rich(), EXIF, show_location=False)
    blocks = render_blocks(summary)
    assert blocks[0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": ":warning: *Content warning:* Alcohol 81%"},
    }
    assert blocks[-1]["type"] == "context"
    assert blocks[-1]["elements"][0]["text"].startswith("Recognizer: rekognition")
    joined = "\n".join(
        b["text"]["text"] if b["type"] == "section" else b["elements"][0]["text"] for b in blocks
    )
    assert joined == render_mrkdwn(summary)


def test_blocks_respect_slacks_limits() -> None:
    lines = tuple(f"line {i} " + "x" * 70 for i in range(100))
    long_text = TextSection(lines=lines)
    summary = build_summary(Analysis(backend="b"), ExifData(), show_location=False)
    huge = type(summary)((long_text, *summary.sections))
    blocks = render_blocks(huge)
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(texts) > 1
    assert all(len(t) <= MAX_SECTION_CHARS for t in texts)
    assert "\n".join(texts) == "\n".join(section_lines(long_text))

    many = type(summary)(tuple(TextSection(lines=("y" * 2990,) * 2) for _ in range(40)) + summary.sections)
    capped = render_blocks(many)
    assert len(capped) == 50
    assert capped[-1]["type"] == "context"  # the recognizer line survives the cut
