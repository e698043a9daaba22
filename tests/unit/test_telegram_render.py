"""Telegram HTML rendering of the summary: escaping of photo-derived strings, and splitting to limits.

Every rendered chunk is checked with the fake Bot API's parser (`tests.fakes.telegram_api.parse_html`),
which refuses markup the way Telegram does, so "accepted here" means "accepted by Telegram".
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import httpx
import pytest
from telegram.error import BadRequest, NetworkError, TimedOut

from adapters.telegram.intake import looks_like_image, user_key
from adapters.telegram.limits import FloodControl, chat_kind, fits_as_photo, not_delivered
from adapters.telegram.render import (
    CAPTION_LIMIT,
    COMPRESSED_TIP,
    MESSAGE_LIMIT,
    Block,
    bold,
    code,
    link,
    render_summary,
    split_blocks,
    split_plain,
    text,
)
from bot.photo_requests import FileRef, PhotoRequest
from core.analysis_types import (
    Analysis,
    Box,
    DetectedObject,
    ExifData,
    Face,
    FaceAttributes,
    Feature,
    GpsPosition,
    Label,
    ModerationLabel,
    TextLine,
)
from core.summary import (
    CameraSection,
    CelebritiesSection,
    CelebrityItem,
    FaceItem,
    FacesSection,
    LabelItem,
    LabelsSection,
    LocationSection,
    ModerationItem,
    ModerationSection,
    RecognizerSection,
    Summary,
    TextSection,
    build_summary,
)
from tests.fakes.telegram_api import EntityError, parse_html, utf16_len

HOSTILE = '</b><script>alert("x")</script> & <a href="https://evil.example">win</a> &amp; <i>'


def visible(chunks: list[str]) -> str:
    return "\n".join(parse_html(chunk) for chunk in chunks)


def check_limits(chunks: list[str], first: int = CAPTION_LIMIT, rest: int = MESSAGE_LIMIT) -> None:
    """Each chunk is valid Telegram HTML on its own and within its limit."""
    assert chunks
    for i, chunk in enumerate(chunks):
        shown = parse_html(chunk)  # raises EntityError on a tag cut in half
        assert shown.strip()
        assert utf16_len(shown) <= (first if i == 0 else rest), f"chunk {i} too long"


# -- the fake's parser is strict enough to catch mistakes --------------------------------------


@pytest.mark.parametrize(
    "markup",
    ["<b>open", "x</b>", "<script>x</script>", "a & b", "<a>no href</a>", "<b><i>x</b></i>", "1 < 2"],
)
def test_the_fake_refuses_what_telegram_refuses(markup: str) -> None:
    with pytest.raises(EntityError):
        parse_html(markup)


def test_the_fake_reads_entities_and_allowed_tags() -> None:
    assert parse_html(
        '<b>a</b> &lt;&amp;&gt;&quot; &#128512; <a href="https://x.org/?a=1&amp;b=2">l</a>'
    ) == ('a <&>" 😀 l')


# -- escaping ----------------------------------------------------------------------------------


def test_every_section_escapes_photo_derived_strings() -> None:
    summary = Summary(
        (
            ModerationSection((ModerationItem(HOSTILE, 0.9),)),
            LabelsSection((LabelItem(HOSTILE, 0.97),), omitted=2),
            FacesSection((FaceItem(1, 0.99, emotion=HOSTILE),)),
            CelebritiesSection((CelebrityItem(HOSTILE, 0.9, ("javascript:alert(1)",)),)),
            TextSection((HOSTILE,)),
            CameraSection(camera=HOSTILE, lens=HOSTILE, software=HOSTILE),
            RecognizerSection(backend=HOSTILE),
        )
    )
    [chunk, *rest] = render_summary(summary, first_limit=MESSAGE_LIMIT)
    assert rest == []
    shown = parse_html(chunk)
    assert shown.count(HOSTILE) == 9
    assert "<script" not in chunk
    assert "<a " not in chunk  # a javascript: "URL" never becomes a link


def test_control_and_bidi_characters_cannot_fake_lines() -> None:
    sneaky = "Canon\nLocation: 0.0, 0.0\u202eevil\x1b[31m"
    summary = Summary((CameraSection(camera=sneaky), RecognizerSection(backend="none")))
    shown = visible(render_summary(summary))
    lines = shown.split("\n")
    assert len(lines) == 2
    assert lines[0].startswith("Camera: Canon Location: 0.0, 0.0 evil")
    assert "\u202e" not in shown
    assert "\x1b" not in shown


def test_links_only_for_real_web_addresses() -> None:
    summary = Summary(
        (
            CelebritiesSection(
                (
                    CelebrityItem("Ada", 0.99, ("www.imdb.com/name/nm0000001",)),
                    CelebrityItem("Eve", 0.98, ('evil.example/"onmouseover=x',)),
                )
            ),
            LocationSection(48.8583, 2.2945, altitude=35.0),
            RecognizerSection(backend="rekognition"),
        )
    )
    [chunk] = render_summary(summary)
    assert '<a href="https://www.imdb.com/name/nm0000001">Ada</a> 99%' in chunk
    assert "Eve 98%" in parse_html(chunk)
    assert chunk.count("<a ") == 2  # Ada and the map, not Eve
    assert '<a href="https://www.openstreetmap.org/?mlat=48.85830&amp;mlon=2.29450#map=16/' in chunk


def test_hidden_location_shows_the_note_and_no_coordinates() -> None:
    exif = ExifData(make="Apple", model="iPhone 13", gps=GpsPosition(latitude=48.8583, longitude=2.2945))
    summary = build_summary(Analysis(backend="none", features=frozenset()), exif, show_location=False)
    shown = visible(render_summary(summary))
    assert "Location: The photo carries a GPS location, which is not shown." in shown
    assert "48.8" not in shown
    assert "openstreetmap" not in shown


def test_a_real_analysis_with_hostile_values_renders_as_valid_html() -> None:
    box = Box(0.1, 0.1, 0.2, 0.2)
    analysis = Analysis(
        backend="rekognition",
        features=frozenset({Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION}),
        labels=(Label(HOSTILE, 0.9), Label("Dog", 0.8)),
        objects=(DetectedObject("<Dog>", 0.9, box), DetectedObject("<Dog>", 0.8, box)),
        faces=(Face(box, 0.99, FaceAttributes(age_low=20, age_high=30, smiling=True)),),
        text=(TextLine(HOSTILE, 0.99, box), TextLine("OPEN & CLOSED", 0.9, box)),
        moderation=(ModerationLabel("Alcohol", 0.7, "Drugs & Tobacco"),),
    )
    exif = ExifData(
        make=HOSTILE,
        model="EOS <R5>",
        lens="RF 50mm",
        f_number=1.8,
        exposure_time=1 / 120,
        iso=100,
        datetime_original=datetime(2024, 5, 14, 18, 3),
    )
    chunks = render_summary(build_summary(analysis, exif, show_location=True))
    check_limits(chunks)
    shown = visible(chunks)
    assert "⚠️ Content warning: Alcohol 70%" in shown
    assert "Objects: 2 <dog>s" in shown or "Objects: 2 <Dog>s" in shown
    assert "OPEN & CLOSED" in shown
    assert "Taken: 2024-05-14 18:03" in shown


def test_compressed_photo_tip_is_appended() -> None:
    summary = Summary((RecognizerSection(backend="none"),))
    assert COMPRESSED_TIP not in visible(render_summary(summary))
    assert visible(render_summary(summary, compressed_tip=True)).endswith(COMPRESSED_TIP)


# -- splitting ---------------------------------------------------------------------------------


def long_summary(seed: int) -> Summary:
    rng = random.Random(seed)
    alphabet = "abc <&> xyz ÄÖ 🎉 \"' "

    def word(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    return Summary(
        (
            LabelsSection(tuple(LabelItem(word(rng.randint(5, 60)), rng.random()) for _ in range(8))),
            FacesSection(tuple(FaceItem(i, 0.9, emotion=word(20)) for i in range(1, 40))),
            TextSection(tuple(word(rng.randint(20, 80)) for _ in range(30)), omitted=4),
            CameraSection(camera=word(120), lens=word(120), software=word(120)),
            RecognizerSection(backend="rekognition"),
        )
    )


@pytest.mark.parametrize("seed", range(6))
def test_long_summaries_split_into_valid_chunks_within_limits(seed: int) -> None:
    summary = long_summary(seed)
    whole = parse_html(render_summary(summary, first_limit=10**6, limit=10**6)[0])
    chunks = render_summary(summary)
    assert len(chunks) >= 2
    check_limits(chunks)
    assert visible(chunks) == whole  # nothing lost, nothing added: cuts fell between lines here


def test_a_section_stays_together_when_it_fits() -> None:
    faces = tuple(
        FaceItem(i, 0.9, age_low=20, age_high=30, smiling=True, eyeglasses=True) for i in range(1, 50)
    )
    summary = Summary((LabelsSection((LabelItem("Dog", 0.9),)), FacesSection(faces), RecognizerSection("x")))
    chunks = render_summary(summary)
    check_limits(chunks)
    assert len(chunks) == 2
    assert parse_html(chunks[0]) == "Labels: Dog 90%"  # the faces moved on whole
    assert parse_html(chunks[1]).startswith("Faces: 49 faces")


def test_an_over_long_line_is_cut_inside_its_text_keeping_the_markup() -> None:
    blocks: list[Block] = [
        ((bold("Text:"), text(" "), code("word <&> " * 1000), link(" map", "https://x.org/?a&b")),)
    ]
    chunks = split_blocks(blocks, CAPTION_LIMIT, MESSAGE_LIMIT)
    check_limits(chunks)
    sizes = [utf16_len(parse_html(c)) for c in chunks]
    assert len(sizes) == 3  # 9010 characters: a full caption, a full message, the rest
    assert sizes[0] > CAPTION_LIMIT - 10  # cut at the last space, not earlier
    assert sizes[1] > MESSAGE_LIMIT - 10
    assert all(chunk.count("<code>") == chunk.count("</code>") >= 1 for chunk in chunks)
    assert "".join(parse_html(c) for c in chunks) == "Text: " + "word <&> " * 1000 + " map"


def test_limits_count_utf16_units_like_telegram() -> None:
    blocks: list[Block] = [((text("🎉" * 700),),)]  # 700 characters, 1400 UTF-16 units
    chunks = split_blocks(blocks, CAPTION_LIMIT, MESSAGE_LIMIT)
    check_limits(chunks)
    assert [utf16_len(parse_html(c)) for c in chunks] == [1024, 376]


def test_plain_text_splitting() -> None:
    message = "\n".join(f"line {i} " + "x" * 90 for i in range(100))
    chunks = split_plain(message)
    assert all(len(c) <= MESSAGE_LIMIT for c in chunks)
    assert "\n".join(chunks) == message


# -- Telegram's other limits and small decisions ---------------------------------------------------


@pytest.mark.parametrize(
    ("size", "width", "height", "fits"),
    [
        (1_000_000, 1920, 1080, True),
        (10 * 1024 * 1024, 5000, 5000, True),
        (10 * 1024 * 1024 + 1, 1920, 1080, False),
        (1_000_000, 6000, 4001, False),
        (1_000_000, 4000, 199, False),  # more than 20:1
    ],
)
def test_photo_or_document(size: int, width: int, height: int, fits: bool) -> None:
    assert fits_as_photo(size, width, height) is fits


def test_flood_control_counts_only_messages_per_chat() -> None:
    limiter = FloodControl()
    assert limiter.limiters_for("sendChatAction", {"chat_id": -100}) == []
    assert limiter.limiters_for("getFile", {"file_id": "x"}) == []
    group = limiter.limiters_for("sendPhoto", {"chat_id": -100})
    assert group[0].max_rate == 20
    assert group[0] is limiter.limiters_for("sendMessage", {"chat_id": "-100"})[0]
    private = limiter.limiters_for("sendMessage", {"chat_id": 42})
    assert private[0] is not group[0]
    assert private[-1] is group[-1] is limiter.overall
    assert [chat_kind(c) for c in (-100, "42", "@channel", None)] == ["group", "private", "group", None]


def _transport_error(kind: type[httpx.HTTPError]) -> NetworkError:
    """A NetworkError as python-telegram-bot raises it for an httpx failure (the httpx error as cause)."""
    try:
        try:
            raise kind("boom", request=httpx.Request("POST", "http://127.0.0.1"))
        except httpx.HTTPError as err:
            raise NetworkError(f"httpx.{type(err).__name__}: {err}") from err
    except NetworkError as error:
        return error


@pytest.mark.parametrize(
    ("endpoint", "error", "tries"),
    [
        ("sendPhoto", NetworkError("Internal Server Error"), 3),  # a 5xx answer: Telegram did not act
        ("sendPhoto", "connect", 3),  # never arrived
        ("sendPhoto", TimedOut(), 1),  # may have arrived: a message stays at most once
        ("sendPhoto", "read", 1),
        ("getFile", TimedOut(), 3),  # a lookup can always be repeated
        ("getUpdates", NetworkError("Bad Gateway"), 1),  # the poller backs off on its own
        ("sendPhoto", BadRequest("Bad Request: PHOTO_INVALID_DIMENSIONS"), 1),  # Telegram's answer stands
        ("getFile", BadRequest("Bad Request: file is too big"), 1),
    ],
)
async def test_flood_control_retries_only_what_cannot_duplicate(
    endpoint: str, error: NetworkError | str, tries: int
) -> None:
    if error == "connect":
        error = _transport_error(httpx.ConnectError)
    elif error == "read":
        error = _transport_error(httpx.ReadError)
    assert isinstance(error, NetworkError)
    limiter = FloodControl(outage_retries=2, outage_backoff_s=0.01)
    calls = 0

    async def callback() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(NetworkError):
        await limiter.process_request(callback, (), {}, endpoint, {"chat_id": 42}, None)
    assert calls == tries


async def test_flood_control_recovers_after_a_short_outage() -> None:
    limiter = FloodControl(outage_backoff_s=0.01)
    answers: list[Any] = [NetworkError("Internal Server Error"), NetworkError("Bad Gateway"), {"ok": 1}]

    async def callback() -> dict[str, Any]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 42}, None) == {"ok": 1}
    assert not_delivered(NetworkError("Internal Server Error"))
    assert not not_delivered(_transport_error(httpx.RemoteProtocolError))


@pytest.mark.parametrize(
    ("mime", "name", "image"),
    [
        ("image/jpeg", "x.bin", True),
        ("image/heic", None, True),
        ("application/pdf", "photo.jpg", False),
        ("application/octet-stream", "IMG_0001.HEIC", True),
        (None, "scan.tiff", True),
        (None, "notes.txt", False),
        (None, None, False),
    ],
)
def test_which_documents_look_like_images(mime: str | None, name: str | None, image: bool) -> None:
    assert looks_like_image(mime, name) is image


def test_user_key_matches_the_requests_own() -> None:
    request = PhotoRequest("telegram", "42", "42", "7", FileRef("f"), frozenset())
    assert user_key(42) == request.user_key
