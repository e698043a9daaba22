"""The Telegram bot end to end: the real python-telegram-bot client over HTTP against a fake Bot API.

Each test runs the real pieces (PhotoService on SQLite, the Worker, the Telegram adapter, and the
Rekognition backend against its local fake where recognition matters) and asserts on what a user
would see: the calls the fake Bot API recorded. The fake refuses what Telegram refuses (bad HTML,
over-long captions and messages, oversize photos and downloads), so a reply it accepted would be
accepted by Telegram too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from adapters.telegram import TelegramAdapter, create
from adapters.telegram.config import SECRET_HEADER, WEBHOOK_PATH
from bot.platforms import ENTRY_POINT_GROUP, load_adapters
from bot.settings import SettingsError
from bot.wiring import build_rekognition, build_service, build_stores
from core.analysis_types import Feature
from core.recognizers.rekognition import RekognitionRecognizer
from tests.fakes.rekognition import FakeRekognition
from tests.fakes.telegram_api import BOT_USERNAME, MAX_CAPTION, MAX_TEXT, FakeTelegram, utf16_len
from tests.integration.telegram_helpers import AWS_ENV, Rig, bot_settings, exif_bytes, jpeg, start_rig

# aiohttp's own multipart reader (inside the fake Bot API) warns about its internals now and then.
pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]
EIFFEL = (48.8583, 2.2945)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture(scope="module")
def rekognition() -> Iterator[FakeRekognition]:
    """The fake Rekognition service, with dummy AWS credentials from the environment only."""
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                env.delenv(name)
        for name, value in AWS_ENV.items():
            env.setenv(name, value)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        with FakeRekognition() as server:
            yield server


@pytest.fixture
async def rigs(tmp_path: Path, fake: FakeTelegram) -> AsyncIterator[list[Rig]]:
    """Bots started by a test, closed at its end."""
    started: list[Rig] = []
    yield started
    for rig in started:
        await rig.close()


async def bot(
    rigs: list[Rig],
    tmp_path: Path,
    fake: FakeTelegram,
    recognizer: RekognitionRecognizer | None = None,
    *,
    with_worker: bool = True,
    start: bool = True,
    data_dir: Path | None = None,
    **overrides: Any,
) -> Rig:
    """Start a bot against `fake` with these settings; the `rigs` fixture closes it."""
    settings = bot_settings(data_dir or tmp_path / f"data{len(rigs)}", fake.url, **overrides)
    rig = await start_rig(settings, recognizer=recognizer, with_worker=with_worker, start=start)
    rigs.append(rig)
    return rig


def rekognition_for(server: FakeRekognition, tmp_path: Path, fake: FakeTelegram) -> RekognitionRecognizer:
    settings = bot_settings(
        tmp_path,
        fake.url,
        rekognition_endpoint_url=server.url,
        rekognition_region="us-east-1",
        rekognition_max_attempts=1,
    )
    return build_rekognition(settings)


def replies_to(fake: FakeTelegram, message: dict[str, Any], *methods: str) -> list[Any]:
    """Successful sends that reply to `message`."""
    methods = methods or ("sendMessage", "sendPhoto", "sendDocument")
    return [c for c in fake.calls_to(*methods, ok=True) if c.reply_to_message_id == message["message_id"]]


async def wait_reply(fake: FakeTelegram, message: dict[str, Any], *methods: str, count: int = 1) -> list[Any]:
    await fake.wait_for(lambda: len(replies_to(fake, message, *methods)) >= count)
    return replies_to(fake, message, *methods)


async def settled_usage(rig: Rig, user: str, used: int) -> int:
    """The user's usage once the worker settled it: the refund comes right after the reply, not before."""
    deadline = asyncio.get_running_loop().time() + 15.0
    while True:
        current = (await rig.service.usage(user)).used
        if current == used or asyncio.get_running_loop().time() > deadline:
            return current
        await asyncio.sleep(0.05)


async def ask(fake: FakeTelegram, chat: dict[str, Any], text: str, **kwargs: Any) -> Any:
    """Send a text (a command) and return the bot's next message in that chat."""
    before = len(fake.sent(chat))
    fake.send_text(chat, text, **kwargs)
    await fake.wait_for(lambda: len(fake.sent(chat)) > before)
    return fake.sent(chat)[before]


def exif_of(data: bytes) -> dict[int, Any]:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif())


# ---------------------------------------------------------------------------------------------
# Private chats
# ---------------------------------------------------------------------------------------------


async def test_private_photo_gets_annotated_photo_and_summary(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, rekognition: FakeRekognition
) -> None:
    await bot(rigs, tmp_path, fake, rekognition_for(rekognition, tmp_path, fake))
    chat = fake.private_chat(fake.user(42))
    message = fake.send_photo(chat, jpeg(exif=exif_bytes(gps=EIFFEL)))

    [reply] = await wait_reply(fake, message, "sendPhoto")

    caption = reply.visible_text
    assert "Labels: Person 99%" in caption
    assert "Faces: 1 face" in caption
    assert "OPEN 24 HOURS" in caption
    # Telegram dropped the EXIF when compressing: the reply says how to keep it.
    assert "Send it as a file" in caption
    assert "Camera:" not in caption
    assert "openstreetmap" not in reply.text
    # The annotated image is a real JPEG of the photo's size, without EXIF.
    upload = reply.upload
    assert upload is not None
    with Image.open(io.BytesIO(upload.data)) as image:
        assert (image.format, image.size) == ("JPEG", (640, 480))
    assert exif_of(upload.data) == {}
    # The largest size was fetched, and the chat showed "sending photo..." before the reply.
    [get_file] = fake.calls_to("getFile")
    assert get_file.params["file_id"] == message["photo"][-1]["file_id"]
    methods = [c.method for c in fake.calls]
    assert "sendChatAction" in methods[: methods.index("sendPhoto")]
    assert any(c.params.get("action") == "upload_photo" for c in fake.calls_to("sendChatAction"))


async def test_document_keeps_exif_and_private_chat_shows_location(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    await bot(rigs, tmp_path, fake)
    chat = fake.private_chat(fake.user(42))
    original = jpeg(exif=exif_bytes(lens="RF50mm F1.8 STM", gps=EIFFEL))
    message = fake.send_document(chat, original, file_name="eiffel.jpg")

    [reply] = await wait_reply(fake, message, "sendPhoto")

    caption = reply.visible_text
    assert "Camera: Canon EOS R5 · 50 mm · f/1.8 · 1/120 s · ISO 100" in caption
    assert "Lens: RF50mm F1.8 STM" in caption
    assert "Location: 48.85830, 2.29450" in caption
    assert '<a href="https://www.openstreetmap.org/?mlat=48.85830&amp;mlon=2.29450' in reply.text
    assert "Send it as a file" not in caption
    # The file was downloaded as sent (its EXIF was read); the answer carries none of it.
    assert fake.downloads
    assert reply.upload is not None
    assert exif_of(reply.upload.data) == {}


async def test_non_image_files_are_refused_politely(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    rig = await bot(rigs, tmp_path, fake)
    chat = fake.private_chat(fake.user(42))
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"

    report = fake.send_document(chat, pdf, file_name="report.pdf", mime_type="application/pdf")
    [refusal] = await wait_reply(fake, report, "sendMessage")
    assert "doesn't look like a photo" in refusal.visible_text
    assert fake.calls_to("getFile") == []
    assert await rig.jobs() == 0

    # A PDF that claims to be a JPEG is downloaded, and the worker tells the user what it is.
    disguised = fake.send_document(chat, pdf, file_name="photo.jpg", mime_type="image/jpeg")
    [answer] = await wait_reply(fake, disguised, "sendMessage")
    assert "looks like" in answer.visible_text
    assert "PDF" in answer.visible_text
    assert fake.calls_to("sendPhoto") == []
    assert await settled_usage(rig, "telegram:42", 0) == 0  # the user's mistake is refunded


async def test_file_over_20_mb_is_refused_before_downloading(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    rig = await bot(rigs, tmp_path, fake, max_input_bytes=50_000_000)
    chat = fake.private_chat(fake.user(42))
    big = b"\xff\xd8\xff\xe0" + os.urandom(21 * 1024 * 1024)

    message = fake.send_document(chat, big, file_name="huge.jpg")

    [refusal] = await wait_reply(fake, message, "sendMessage")
    assert "20 MB" in refusal.visible_text
    assert fake.calls_to("getFile") == []
    assert fake.downloads == []
    assert await rig.jobs() == 0
    assert (await rig.service.usage("telegram:42")).used == 0


async def test_album_gets_one_reply_per_photo_in_order(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    await bot(rigs, tmp_path, fake)
    chat = fake.private_chat(fake.user(42))
    # Photos of different sizes take different times; the replies must still keep the album's order.
    images = [jpeg(2400, 1800), jpeg(200, 150), jpeg(1200, 900), jpeg(320, 240)]

    album = fake.send_album(chat, images)

    await fake.wait_for(lambda: len(fake.calls_to("sendPhoto", ok=True)) == len(album))
    replied = [c.reply_to_message_id for c in fake.calls_to("sendPhoto", ok=True)]
    assert replied == [m["message_id"] for m in album]
    assert len(fake.calls_to("sendMessage")) <= 1  # at most one "queued" note for the whole album


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's own RetryAfter
async def test_429_on_send_is_waited_out_and_retried(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    await bot(rigs, tmp_path, fake)
    chat = fake.private_chat(fake.user(42))
    fake.rate_limit("sendPhoto", times=1, retry_after=1)

    message = fake.send_photo(chat, jpeg())

    await wait_reply(fake, message, "sendPhoto")
    attempts = fake.calls_to("sendPhoto")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[0].response["parameters"] == {"retry_after": 1}
    assert attempts[1].started - attempts[0].started >= 1.0  # Telegram's wait was honoured


async def test_bot_api_5xx_on_send_is_retried_and_answers_once(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    await bot(rigs, tmp_path, fake)
    chat = fake.private_chat(fake.user(42))
    fake.fail("sendPhoto", times=2, error_code=500, description="Internal Server Error")

    message = fake.send_photo(chat, jpeg())

    await wait_reply(fake, message, "sendPhoto")
    assert [c.status for c in fake.calls_to("sendPhoto")] == [500, 500, 200]
    await asyncio.sleep(0.5)
    assert len(replies_to(fake, message)) == 1


async def test_quota_exhausted_is_a_friendly_refusal(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    rig = await bot(rigs, tmp_path, fake, quota_daily_limit=1)
    chat = fake.private_chat(fake.user(42))

    first = fake.send_photo(chat, jpeg())
    await wait_reply(fake, first, "sendPhoto")
    second = fake.send_photo(chat, jpeg(color="olive"))

    [refusal] = await wait_reply(fake, second, "sendMessage")
    assert "You have used all 1 photo for today" in refusal.visible_text
    assert "resets at 00:00 UTC" in refusal.visible_text
    assert len(fake.calls_to("sendPhoto")) == 1
    assert await rig.jobs() == 1

    # An album over the quota gets one refusal, not one per photo.
    album = fake.send_album(chat, [jpeg(), jpeg(), jpeg()])
    [refusal] = await wait_reply(fake, album[0], "sendMessage")
    assert "You have used all 1 photo for today" in refusal.visible_text
    ping = await ask(fake, chat, "/quota")
    assert "0 photos left today" in ping.visible_text
    assert [replies_to(fake, m) for m in album[1:]] == [[], []]


async def test_queued_photo_gets_a_quick_note(rigs: list[Rig], tmp_path: Path, fake: FakeTelegram) -> None:
    rig = await bot(rigs, tmp_path, fake, with_worker=False)
    chat = fake.private_chat(fake.user(42))

    first = fake.send_photo(chat, jpeg())
    second = fake.send_photo(chat, jpeg(color="olive"))

    [note] = await wait_reply(fake, second, "sendMessage")
    assert note.visible_text == "Got it: queued, 1 ahead of you."
    assert replies_to(fake, first) == []  # next in line: "sending photo..." is enough
    assert {c.params["action"] for c in fake.calls_to("sendChatAction")} == {"upload_photo"}
    assert await rig.jobs() == 2


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        ("Bad Request: PHOTO_INVALID_DIMENSIONS", "sendDocument"),
        ('Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 0', "sendPhoto"),
    ],
)
async def test_telegram_refusing_the_photo_still_gets_the_user_an_answer(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, refusal: str, expected: str
) -> None:
    await bot(rigs, tmp_path, fake)
    chat = fake.private_chat(fake.user(42))
    fake.fail("sendPhoto", description=refusal)

    message = fake.send_document(chat, jpeg(exif=exif_bytes()), file_name="x.jpg")

    [reply] = await wait_reply(fake, message, expected)
    assert "Camera: Canon EOS R5" in reply.visible_text
    if expected == "sendPhoto":  # the plain-text rendering, without markup
        assert "parse_mode" not in reply.params
    else:
        assert reply.params["parse_mode"] == "HTML"
        assert reply.upload is not None
        assert reply.upload.filename == "photodetective.jpg"


# ---------------------------------------------------------------------------------------------
# Groups
# ---------------------------------------------------------------------------------------------


async def test_group_photo_is_analysed_when_the_bot_is_mentioned(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    await bot(rigs, tmp_path, fake)
    group = fake.group_chat()

    ignored = fake.send_photo(group, jpeg())
    mentioned = fake.send_document(
        group, jpeg(exif=exif_bytes(gps=EIFFEL)), caption=f"@{BOT_USERNAME} where was this?"
    )

    [reply] = await wait_reply(fake, mentioned, "sendPhoto")
    assert replies_to(fake, ignored) == []
    assert len(fake.calls_to("getFile")) == 1
    # Groups only learn that the photo carries a location, not where.
    assert "Location: The photo carries a GPS location, which is not shown." in reply.visible_text
    assert "openstreetmap" not in reply.text
    assert "48.8" not in reply.visible_text


async def test_group_album_mention_covers_every_photo(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    await bot(rigs, tmp_path, fake)
    group = fake.group_chat()

    album = fake.send_album(
        group, [jpeg(), jpeg(color="olive"), jpeg(color="navy")], caption=f"@{BOT_USERNAME}"
    )

    await fake.wait_for(lambda: len(fake.calls_to("sendPhoto", ok=True)) == 3)
    assert [c.reply_to_message_id for c in fake.calls_to("sendPhoto")] == [m["message_id"] for m in album]


async def test_analyze_in_reply_to_a_group_photo(rigs: list[Rig], tmp_path: Path, fake: FakeTelegram) -> None:
    rig = await bot(rigs, tmp_path, fake)
    group = fake.group_chat()
    bob = fake.user(43, "Bob")

    photo = fake.send_photo(group, jpeg())
    command = fake.send_text(group, "/analyze", sender=bob, reply_to=photo)
    [reply] = await wait_reply(fake, command, "sendPhoto")
    assert reply.chat_id == group["id"]
    assert (await rig.service.usage("telegram:43")).used == 1  # charged to whoever asked
    assert (await rig.service.usage("telegram:42")).used == 0

    hint = await ask(fake, group, f"/analyze@{BOT_USERNAME}", sender=bob)
    assert "Reply /analyze to a photo" in hint.visible_text


async def test_group_admins_can_have_every_photo_analysed(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    rig = await bot(rigs, tmp_path, fake)
    group = fake.group_chat()
    alice, admin = fake.user(42), fake.user(7, "Ada")
    fake.set_member_status(group, admin, "administrator")

    answer = await ask(fake, group, "/auto on", sender=alice)
    assert "Only the group's admins" in answer.visible_text
    assert await rig.service.analyses_every_photo("telegram:" + str(group["id"])) is None

    answer = await ask(fake, group, "/auto on", sender=admin)
    assert "every photo" in answer.visible_text
    assert await rig.service.analyses_every_photo("telegram:" + str(group["id"])) is True

    photo = fake.send_photo(group, jpeg(), sender=alice)
    await wait_reply(fake, photo, "sendPhoto")


# ---------------------------------------------------------------------------------------------
# Markup: escaping and splitting
# ---------------------------------------------------------------------------------------------


async def test_hostile_exif_and_ocr_strings_are_escaped(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, rekognition: FakeRekognition
) -> None:
    await bot(rigs, tmp_path, fake, rekognition_for(rekognition, tmp_path, fake))
    rekognition.reset()
    hostile_text = '</code><b>FREE</b> & <a href="https://evil.example">prize</a>'
    rekognition.set_response(
        "DetectText",
        {
            "TextDetections": [
                {
                    "DetectedText": hostile_text,
                    "Type": "LINE",
                    "Id": 0,
                    "Confidence": 99.0,
                    "Geometry": {"BoundingBox": {"Width": 0.5, "Height": 0.1, "Left": 0.1, "Top": 0.8}},
                }
            ]
        },
    )
    chat = fake.private_chat(fake.user(42))
    make = '<b>Evil</b> & "Co" <script>'
    model = '</i><a href="javascript:alert(1)">x</a> &amp; 💥'
    message = fake.send_document(chat, jpeg(exif=exif_bytes(make=make, model=model)), file_name="x.jpg")

    [reply] = await wait_reply(fake, message, "sendPhoto")

    # Accepted by the fake's strict HTML parser, and shown literally to the user.
    caption = reply.visible_text
    assert hostile_text in caption
    assert "<b>Evil</b> &" in caption
    assert '<a href="javascript:alert(1)">x</a> &amp; 💥' in caption
    # None of it became markup: no script, no links, no bold but our own.
    assert "<script" not in reply.text
    assert "<a " not in reply.text
    assert "<b>Evil" not in reply.text
    assert "<b>FREE" not in reply.text


def replies_recorded_sent(queue_file: Path) -> list[int]:
    """The queue's "reply sent" record of every job, read from the SQLite file as an operator could."""
    with contextlib.closing(sqlite3.connect(queue_file)) as conn:
        return [int(row[0]) for row in conn.execute("SELECT reply_sent FROM queue_jobs")]


async def test_long_summary_is_split_into_caption_and_messages(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, rekognition: FakeRekognition
) -> None:
    await bot(rigs, tmp_path, fake, rekognition_for(rekognition, tmp_path, fake))
    rekognition.reset()
    lines = [f"line {i} " + "ÄÖÜ 🎉 word " * 7 for i in range(6)]
    rekognition.set_response(
        "DetectText",
        {
            "TextDetections": [
                {
                    "DetectedText": line,
                    "Type": "LINE",
                    "Id": i,
                    "Confidence": 99.0,
                    "Geometry": {"BoundingBox": {"Width": 0.5, "Height": 0.05, "Left": 0.1, "Top": 0.1 * i}},
                }
                for i, line in enumerate(lines)
            ]
        },
    )
    labels = [
        {"Name": f"Remarkably Long Label Name Number {i} <&>", "Confidence": 99.0 - i, "Instances": []}
        for i in range(8)
    ]
    rekognition.set_response("DetectLabels", {"Labels": labels})
    chat = fake.private_chat(fake.user(42))
    fake.set_delay("sendMessage", 1.5)  # the follow-ups are slow to go out

    message = fake.send_photo(chat, jpeg())

    [photo] = await wait_reply(fake, message, "sendPhoto")
    photo_id = photo.response["result"]["message_id"]
    # Once the photo is out the answer counts as sent, before the follow-ups: a worker dying
    # while they go out must not send the photo again.
    queue_file = rigs[0].settings.data_dir / "queue.sqlite3"
    await fake.wait_for(lambda: replies_recorded_sent(queue_file) == [1], within_s=1.0)
    assert not any(c.reply_to_message_id == photo_id for c in fake.sent(chat))
    await fake.wait_for(lambda: any(c.reply_to_message_id == photo_id for c in fake.sent(chat)))
    rest = [c for c in fake.sent(chat) if c.reply_to_message_id == photo_id]
    assert utf16_len(photo.visible_text) <= MAX_CAPTION
    assert all(utf16_len(c.visible_text) <= MAX_TEXT for c in rest)
    whole = "\n".join([photo.visible_text, *(c.visible_text for c in rest)])
    for line in lines:
        assert line.strip()[:60] in whole
    assert "Remarkably Long Label Name Number 7 <&>" in whole
    assert all(c.ok for c in fake.calls_to("sendPhoto", "sendMessage"))


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


async def test_help_quota_and_privacy(rigs: list[Rig], tmp_path: Path, fake: FakeTelegram) -> None:
    await bot(rigs, tmp_path, fake, quota_daily_limit=7)
    chat = fake.private_chat(fake.user(42))

    answer = await ask(fake, chat, "/start")
    assert "PhotoDetective" in answer.visible_text
    assert "Recognizer: none" in answer.visible_text
    assert "7 photos a day" in answer.visible_text

    answer = await ask(fake, chat, "/quota")
    assert "You have 7 photos left today: 0 of 7 used." in answer.visible_text
    assert "resets at 00:00 UTC" in answer.visible_text

    answer = await ask(fake, chat, "/privacy")
    assert "not stored after the answer" in answer.visible_text
    assert "No recognition service is used" in answer.visible_text
    assert "days" in answer.visible_text
    assert "not shown, only mentioned" in answer.visible_text  # location in groups

    answer = await ask(fake, chat, "hello?")
    assert "Send me a photo" in answer.visible_text


async def test_features_are_chosen_per_user(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram, rekognition: FakeRekognition
) -> None:
    rig = await bot(rigs, tmp_path, fake, rekognition_for(rekognition, tmp_path, fake))
    alice, bob = fake.user(42), fake.user(43, "Bob")
    chat = fake.private_chat(alice)

    answer = await ask(fake, chat, "/features labels,faces")
    assert "Analyses run on your photos: labels, face analysis" in answer.visible_text
    assert await rig.service.features_for("telegram:42") == {Feature.LABELS, Feature.FACES}
    keyboard = answer.params["reply_markup"]["inline_keyboard"]
    buttons = {b["callback_data"]: b["text"] for row in keyboard for b in row}
    assert buttons["features:42:labels"].startswith("✅")
    assert buttons["features:42:text"].startswith("⬜")

    # A tap switches text recognition on; someone else's tap changes nothing.
    sent = {**answer.response["result"]}
    fake.press(sent, bob, "features:42:moderation")
    await fake.wait_for(lambda: bool(fake.calls_to("answerCallbackQuery")))
    assert fake.calls_to("answerCallbackQuery")[0].params.get("show_alert") == "true"
    fake.press(sent, alice, "features:42:text")
    await fake.wait_for(lambda: bool(fake.calls_to("editMessageText", ok=True)))
    assert await rig.service.features_for("telegram:42") == {Feature.LABELS, Feature.FACES, Feature.TEXT}

    answer = await ask(fake, chat, "/features labels,x-ray")
    assert "unknown feature x-ray" in answer.visible_text

    # The next photo runs only the chosen analyses.
    rekognition.reset()
    photo = fake.send_photo(chat, jpeg())
    await wait_reply(fake, photo, "sendPhoto")
    assert {r.operation for r in rekognition.requests} == {"DetectLabels", "DetectFaces", "DetectText"}


async def test_admin_commands_only_for_admins(rigs: list[Rig], tmp_path: Path, fake: FakeTelegram) -> None:
    rig = await bot(rigs, tmp_path, fake, admins="telegram:1")
    admin_chat = fake.private_chat(fake.user(1, "Root"))
    alice_chat = fake.private_chat(fake.user(42))

    answer = await ask(fake, alice_chat, "/stats")
    assert answer.visible_text == "That command is for the bot's admins."

    answer = await ask(fake, admin_chat, "/stats")
    assert "photos charged" in answer.visible_text
    assert "queue: 0 waiting" in answer.visible_text

    answer = await ask(fake, admin_chat, "/grant 42 5")
    assert "Granted 5 photos for today" in answer.visible_text
    assert (await rig.service.usage("telegram:42")).extra == 5

    answer = await ask(fake, admin_chat, "/block 42")
    assert answer.visible_text == "Blocked telegram:42."
    photo = fake.send_photo(alice_chat, jpeg())
    [refusal] = await wait_reply(fake, photo, "sendMessage")
    assert "can't use this bot" in refusal.visible_text

    answer = await ask(fake, admin_chat, "/unblock 42")
    assert answer.visible_text == "Unblocked telegram:42."


# ---------------------------------------------------------------------------------------------
# Webhook mode
# ---------------------------------------------------------------------------------------------

SECRET = "s3cret-Token_for_tests"
WEBHOOK_URL = "https://bot.example.org/telegram/webhook"


async def test_webhook_checks_the_secret_and_answers_after_storing(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    rig = await bot(
        rigs,
        tmp_path,
        fake,
        telegram_mode="webhook",
        telegram_webhook_url=WEBHOOK_URL,
        telegram_webhook_secret=SECRET,
    )
    assert fake.webhook == (WEBHOOK_URL, SECRET)
    assert fake.calls_to("getUpdates") == []
    app = web.Application()
    app.add_routes(rig.adapter.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}{WEBHOOK_PATH}"
    chat = fake.private_chat(fake.user(42))
    message = fake.photo_message(chat, jpeg())
    update = fake.update_for(message)
    try:
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET[:-1]}):
                async with http.post(url, json=update, headers=headers) as response:
                    assert response.status == 403
            assert await rig.jobs() == 0

            async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 200
                assert await rig.jobs() == 1  # stored before Telegram hears 200
            # Telegram retrying the same update makes no second job.
            async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 200
            assert await rig.jobs() == 1

            await wait_reply(fake, message, "sendPhoto")
            await rig.adapter.stop()
            async with http.post(url, json=update, headers={SECRET_HEADER: SECRET}) as response:
                assert response.status == 503  # not receiving: Telegram keeps it and retries
    finally:
        await runner.cleanup()
    assert len(fake.calls_to("sendPhoto")) == 1


async def test_webhook_mode_needs_a_secret(tmp_path: Path, fake: FakeTelegram) -> None:
    settings = bot_settings(tmp_path, fake.url, telegram_mode="webhook", telegram_webhook_url=WEBHOOK_URL)
    stores = build_stores(settings)
    try:
        service = build_service(settings, stores, frozenset())
        with pytest.raises(SettingsError, match="PHOTODETECTIVE_TELEGRAM_WEBHOOK_SECRET"):
            create(settings, service)
    finally:
        await stores.close()


async def test_no_token_means_no_adapter(
    tmp_path: Path, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    settings = bot_settings(tmp_path, fake.url, telegram_token=None)
    stores = build_stores(settings)
    try:
        service = build_service(settings, stores, frozenset())
        with caplog.at_level("INFO", logger="adapters.telegram"):
            assert create(settings, service) is None
        assert [r.getMessage() for r in caplog.records if r.name == "adapters.telegram"] == [
            "Telegram is off: set PHOTODETECTIVE_TELEGRAM_TOKEN (from @BotFather) to enable it"
        ]
        assert fake.calls == []
    finally:
        await stores.close()


async def test_entry_point_builds_the_adapter(tmp_path: Path, fake: FakeTelegram) -> None:
    # A packaging mistake must fail here, not skip: without the entry point `photodetective run`
    # silently starts no Telegram at all.
    installed = {e.name: e.value for e in entry_points(group=ENTRY_POINT_GROUP)}
    assert installed.get("telegram") == "adapters.telegram:create", installed
    settings = bot_settings(tmp_path, fake.url)
    stores = build_stores(settings)
    try:
        adapters = load_adapters(settings, build_service(settings, stores, frozenset()))
        telegram = [a for a in adapters if a.name == "telegram"]
        assert len(telegram) == 1
        assert isinstance(telegram[0], TelegramAdapter)
        await telegram[0].close()
    finally:
        await stores.close()


async def test_separate_ingress_and_worker_processes(
    rigs: list[Rig], tmp_path: Path, fake: FakeTelegram
) -> None:
    """`run --role ingress` receives and stores; `--role worker` builds the adapter without starting it."""
    shared = tmp_path / "shared"
    ingress = await bot(rigs, tmp_path, fake, with_worker=False, data_dir=shared)
    worker = await bot(rigs, tmp_path, fake, start=False, data_dir=shared)
    chat = fake.private_chat(fake.user(42))

    message = fake.send_photo(chat, jpeg())

    await wait_reply(fake, message, "sendPhoto")
    assert ingress.adapter.receiving
    assert not worker.adapter.receiving
    assert len(fake.calls_to("deleteWebhook")) == 1  # only the ingress took over the updates
    assert len(fake.calls_to("getFile")) == 1


# ---------------------------------------------------------------------------------------------
# Restarts: nothing lost, nothing answered twice
# ---------------------------------------------------------------------------------------------


class Node:
    """The bot in a child process (tests/integration/telegram_node.py), to be killed with SIGKILL."""

    def __init__(self, data_dir: Path, api_url: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.telegram_node", str(data_dir), api_url],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    async def ready(self) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 30)
        assert line.strip() == b"ready", f"the bot process did not start: {line!r}"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    async def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 20)


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for node in started:
        if node.process.poll() is None:
            node.kill()


async def start_node(data_dir: Path, fake: FakeTelegram, nodes: list[Node]) -> Node:
    """A bot process on `data_dir`, ready to take updates; listed in `nodes` so it dies with the test."""
    node = Node(data_dir, fake.url)
    nodes.append(node)
    await node.ready()
    return node


async def test_crash_mid_job_still_gives_one_reply(
    tmp_path: Path, fake: FakeTelegram, nodes: list[Node]
) -> None:
    first = await start_node(tmp_path, fake, nodes)
    chat = fake.private_chat(fake.user(42))
    fake.set_delay("getFile", 30)  # the worker is stuck downloading: mid-job
    message = fake.send_photo(chat, jpeg())
    await fake.wait_for(lambda: any(method == "getFile" for method, _ in fake.started))
    first.kill()
    fake.set_delay("getFile", 0)

    second = await start_node(tmp_path, fake, nodes)
    await wait_reply(fake, message, "sendPhoto")
    await second.terminate()
    assert len(replies_to(fake, message, "sendPhoto")) == 1


async def test_update_is_confirmed_only_after_its_job_is_stored(
    tmp_path: Path, fake: FakeTelegram, nodes: list[Node]
) -> None:
    first = await start_node(tmp_path, fake, nodes)
    # Hold the queue's write lock: the bot can take the update but cannot store its job yet.
    lock = sqlite3.connect(tmp_path / "queue.sqlite3", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        chat = fake.private_chat(fake.user(42))
        message = fake.photo_message(chat, jpeg())
        update_id = fake.inject(fake.update_for(message))["update_id"]
        await fake.wait_for(lambda: fake.handed_out(update_id))
        # The bot now waits on the queue (up to its busy timeout, 5 s); a bot that confirmed
        # updates on receipt would already be polling again with a higher offset.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert max(fake.offsets_sent()) <= update_id, "the update was confirmed before its job was stored"
            await asyncio.sleep(0.05)
        first.kill()
    finally:
        lock.execute("ROLLBACK")
        lock.close()

    second = await start_node(tmp_path, fake, nodes)
    await wait_reply(fake, message, "sendPhoto")
    await second.terminate()
    assert len(replies_to(fake, message, "sendPhoto")) == 1
    assert fake.confirmed_below > update_id
    assert len(fake.calls_to("getFile")) == 1  # one job, one download
