"""The Slack adapter end to end: signed requests into the real Bolt app, the real slack-sdk client
against a fake Slack Web API, the real service with SQLite stores, and a real worker."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import entry_points
from pathlib import Path

import piexif
import pytest
from PIL import Image

from adapters.slack import SlackAdapter, create
from adapters.slack.replies import REACTION_DONE, REACTION_FAILED, REACTION_WORKING
from bot.photo_requests import FileRef, PhotoRequest
from bot.platforms import ENTRY_POINT_GROUP, load_adapters
from bot.ports import FetchFailed
from bot.wiring import build_service, build_stores
from core.analysis_types import Feature
from core.errors import PhotoRejected, TooLarge
from core.recognizers.rekognition import RekognitionRecognizer
from tests.fakes.rekognition import FakeRekognition
from tests.fakes.slack_api import FakeSlack, events_api_envelope
from tests.integration.slack_harness import (
    ADMIN,
    ALICE,
    BOB,
    CHANNEL,
    DM,
    EIFFEL_GPS,
    SlackHarness,
    eventually,
    file_message,
    jpeg,
    make_settings,
    running_slack,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
async def slack(fake: FakeSlack, tmp_path: Path) -> AsyncIterator[SlackHarness]:
    async with running_slack(fake, tmp_path) as harness:
        yield harness


def comment_of(fake: FakeSlack, index: int = 0) -> str:
    return fake.shared_files[index].initial_comment or ""


# -- sharing photos --------------------------------------------------------------------------


async def test_photo_in_a_direct_message_is_answered_in_its_thread(
    slack: SlackHarness, fake: FakeSlack
) -> None:
    file = fake.add_file(
        "F0DM",
        jpeg(zeroth={piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"Canon EOS R5"}, gps=EIFFEL_GPS),
    )
    ts = fake.next_ts()

    answer = await slack.send_event(file_message(file, channel=DM, ts=ts))

    assert answer.status == 200
    assert await slack.jobs() == 1  # acknowledged only once the job was stored
    shared = await eventually(lambda: fake.shared_files, what="the annotated image")
    assert len(shared) == 1
    assert (shared[0].channel_id, shared[0].thread_ts) == (DM, ts)
    annotated = Image.open(io.BytesIO(shared[0].data))
    assert annotated.format == "JPEG"
    assert not annotated.getexif(), "the annotated image must carry no EXIF"
    comment = shared[0].initial_comment or ""
    assert "*Camera:* Canon EOS R5" in comment
    assert "48.8" in comment  # a DM is private: the location is shown
    assert "openstreetmap.org" in comment
    await eventually(lambda: fake.reactions(DM, ts) == {REACTION_DONE}, what="the done reaction")
    added = sorted(c.params["name"] for c in fake.ok_calls("reactions.add"))
    assert added == sorted([REACTION_WORKING, REACTION_DONE])
    downloads = fake.downloads
    assert [d.served for d in downloads] == [True]
    assert downloads[0].authorization == f"Bearer {fake.bot_token}"
    assert fake.ok_calls("files.info")[0].params["file"] == "F0DM"


async def test_channel_photo_waits_for_a_mention_by_default(slack: SlackHarness, fake: FakeSlack) -> None:
    file = fake.add_file("F0CH", jpeg(gps=EIFFEL_GPS))
    ts = fake.next_ts()
    text = f"<@{fake.bot_user_id}> what is this?"

    quiet = await slack.send_event(file_message(file, ts=fake.next_ts()))
    assert quiet.status == 200
    assert await slack.jobs() == 0  # mentions only, by default, in channels

    # Slack sends both a message event and an app_mention event for a mention with a file.
    await slack.send_event(file_message(file, ts=ts, text=text))
    mention = {
        "type": "app_mention",
        "user": ALICE,
        "text": text,
        "ts": ts,
        "channel": CHANNEL,
        "files": [file],
    }
    await slack.send_event(mention)

    await eventually(lambda: fake.reactions(CHANNEL, ts) == {REACTION_DONE}, what="the done reaction")
    assert await slack.jobs() == 1
    assert len(fake.shared_files) == 1
    comment = comment_of(fake)
    assert "GPS location, which is not shown" in comment  # channels hide the position by default
    assert "48.8" not in comment
    assert "openstreetmap" not in comment


async def test_auto_subcommand_turns_on_every_photo_in_a_channel(
    slack: SlackHarness, fake: FakeSlack
) -> None:
    status = await slack.command("auto")
    assert "only images I'm mentioned on" in status.text

    answer = await slack.command("auto on", user=BOB)
    assert answer.json["response_type"] == "in_channel"
    assert answer.json["text"] == f"<@{BOB}> set PhotoDetective to analyse *every image* shared here."

    file = fake.add_file("F0AUTO", jpeg())
    ts = fake.next_ts()
    await slack.send_event(file_message(file, ts=ts))
    await eventually(lambda: fake.reactions(CHANNEL, ts) == {REACTION_DONE}, what="the done reaction")

    back = await slack.command("auto default")
    assert "back to the default" in back.text
    assert await slack.service.analyses_every_photo(f"slack:{CHANNEL}") is None


async def test_mention_in_a_thread_analyses_the_threads_image(slack: SlackHarness, fake: FakeSlack) -> None:
    file = fake.add_file("F0THREAD", jpeg())
    parent = fake.add_message(CHANNEL, {"user": BOB, "text": "look", "files": [file]})
    reply_ts = fake.next_ts()
    mention = {
        "type": "app_mention",
        "user": ALICE,
        "text": f"<@{fake.bot_user_id}>",
        "ts": reply_ts,
        "thread_ts": parent["ts"],
        "channel": CHANNEL,
    }

    await slack.send_event(mention)

    shared = await eventually(lambda: fake.shared_files, what="the annotated image")
    assert shared[0].thread_ts == parent["ts"]
    await eventually(lambda: fake.reactions(CHANNEL, parent["ts"]) == {REACTION_DONE}, what="the reaction")


async def test_retried_event_gets_one_answer(slack: SlackHarness, fake: FakeSlack) -> None:
    file = fake.add_file("F0RETRY", jpeg())
    ts = fake.next_ts()
    event = file_message(file, channel=DM, ts=ts)

    first = await slack.send_event(event, event_id="Ev0RETRY")
    again = await slack.send_event(event, event_id="Ev0RETRY", retry=1)
    # A different delivery of the same message (a new event id) maps to the same job too.
    other = await slack.send_event(event, event_id="Ev0OTHER")

    assert [first.status, again.status, other.status] == [200, 200, 200]
    await eventually(lambda: fake.reactions(DM, ts) == {REACTION_DONE}, what="the done reaction")
    assert await slack.jobs() == 1
    assert len(fake.shared_files) == 1
    assert len([c for c in fake.ok_calls("reactions.add") if c.params["name"] == REACTION_WORKING]) == 1
    usage = await slack.service.usage(f"slack:{fake.team_id}:{ALICE}")
    assert usage.used == 1


async def test_slow_submit_does_not_hold_the_ack(fake: FakeSlack, tmp_path: Path) -> None:
    # With no time budget at all, Slack is acknowledged before the job is stored...
    async with running_slack(fake, tmp_path, ack_budget_s=0.0) as slack:
        file = fake.add_file("F0SLOW", jpeg())
        ts = fake.next_ts()
        answer = await slack.send_event(file_message(file, channel=DM, ts=ts))
        assert answer.status == 200
        # ...and the submit still finishes, and the user still gets the reaction and the answer.
        await eventually(lambda: fake.reactions(DM, ts) == {REACTION_DONE}, what="the done reaction")
        assert await slack.jobs() == 1


# -- refusals --------------------------------------------------------------------------------


async def test_oversize_file_is_refused_before_download(fake: FakeSlack, tmp_path: Path) -> None:
    async with running_slack(fake, tmp_path, max_input_bytes=50_000) as slack:
        big = fake.add_file("F0BIG", jpeg(), size=80_000_000)
        await slack.send_event(file_message(big, channel=DM, ts=fake.next_ts()))
        note = await eventually(lambda: fake.ephemerals(ALICE), what="the refusal")
        assert note[0]["text"] == "That file is 80 MB; the limit is 0.1 MB."  # 50 kB, one decimal
        assert await slack.jobs() == 0

        # The event said nothing about size: files.info tells the worker, still before downloading.
        sneaky = dict(fake.add_file("F0SNEAKY", jpeg(), size=90_000_000))
        del sneaky["size"]
        ts = fake.next_ts()
        await slack.send_event(file_message(sneaky, channel=DM, ts=ts))
        await eventually(lambda: fake.reactions(DM, ts) == {REACTION_FAILED}, what="the failed reaction")
        posted = [c.params["text"] for c in fake.ok_calls("chat.postMessage")]
        assert posted == ["That file is 90 MB; the limit is 0.1 MB."]
        assert fake.downloads == []
        usage = await eventually(lambda: slack.settled_usage(ALICE), what="the quota to be settled")
        assert usage.used == 0  # refunded


async def test_non_image_file_is_refused(slack: SlackHarness, fake: FakeSlack) -> None:
    pdf = fake.add_file("F0PDF", b"%PDF-1.7\n", name="report.pdf", mimetype="application/pdf", filetype="pdf")
    await slack.send_event(file_message(pdf, channel=DM, ts=fake.next_ts()))
    note = await eventually(lambda: fake.ephemerals(ALICE), what="the refusal")
    assert note[0]["text"].startswith("That file looks like a PDF file, not a photo.")
    assert await slack.jobs() == 0

    # A file that claims to be an image but is not: found out by the worker, told in the thread.
    liar = fake.add_file("F0LIAR", b"%PDF-1.7\n" + b"x" * 500, name="cat.jpg", mimetype="image/jpeg")
    ts = fake.next_ts()
    await slack.send_event(file_message(liar, channel=DM, ts=ts))
    await eventually(lambda: fake.reactions(DM, ts) == {REACTION_FAILED}, what="the failed reaction")
    assert "not a photo" in fake.ok_calls("chat.postMessage")[-1].params["text"]


async def test_login_page_instead_of_the_file_is_not_blamed_on_the_user(
    slack: SlackHarness, fake: FakeSlack
) -> None:
    fake.file_tokens = {"xoxb-some-other-token"}  # Slack answers our token with its sign-in page
    file = fake.add_file("F0LOGIN", jpeg())
    ts = fake.next_ts()
    text = f"<@{fake.bot_user_id}> please"
    mention = {"type": "app_mention", "user": ALICE, "text": text, "ts": ts, "channel": CHANNEL}

    await slack.send_event({**mention, "files": [file]})

    await eventually(lambda: fake.reactions(CHANNEL, ts) == {REACTION_FAILED}, what="the failed reaction")
    assert [d.served for d in fake.downloads] == [False]
    notes = fake.ephemerals(ALICE)  # in a channel, only the person who asked is told
    assert [n["text"] for n in notes] == ["Sorry, I couldn't download that photo. You were not charged."]
    assert notes[0]["thread_ts"] == ts
    assert fake.ok_calls("chat.postMessage") == []
    usage = await eventually(lambda: slack.settled_usage(ALICE), what="the quota to be settled")
    assert usage.used == 0


async def test_blocked_channel_is_told_ephemerally(fake: FakeSlack, tmp_path: Path) -> None:
    async with running_slack(fake, tmp_path, blocked_chats=frozenset({f"slack:{CHANNEL}"})) as slack:
        file = fake.add_file("F0BLOCKED", jpeg())
        text = f"<@{fake.bot_user_id}>"
        mention = {
            "type": "app_mention",
            "user": ALICE,
            "text": text,
            "ts": fake.next_ts(),
            "channel": CHANNEL,
            "files": [file],
        }
        await slack.send_event(mention)
        note = await eventually(lambda: fake.ephemerals(ALICE), what="the refusal")
        assert note[0]["text"] == "This bot is not enabled here."
        assert note[0]["channel"] == CHANNEL
        assert await slack.jobs() == 0


async def test_rate_limited_upload_is_retried_after_retry_after(slack: SlackHarness, fake: FakeSlack) -> None:
    fake.rate_limit("files.completeUploadExternal", times=1, retry_after=1)
    file = fake.add_file("F0RATE", jpeg())
    ts = fake.next_ts()

    await slack.send_event(file_message(file, channel=DM, ts=ts))

    await eventually(lambda: fake.reactions(DM, ts) == {REACTION_DONE}, what="the done reaction")
    statuses = [c.status for c in fake.calls("files.completeUploadExternal")]
    assert statuses == [429, 200]
    assert len(fake.shared_files) == 1


async def test_refused_upload_still_delivers_the_summary(slack: SlackHarness, fake: FakeSlack) -> None:
    fake.fail("files.completeUploadExternal", "file_uploads_disabled")
    file = fake.add_file("F0NOUPLOAD", jpeg(zeroth={piexif.ImageIFD.Model: b"X100"}))
    ts = fake.next_ts()

    await slack.send_event(file_message(file, channel=DM, ts=ts))

    await eventually(lambda: fake.reactions(DM, ts) == {REACTION_DONE}, what="the done reaction")
    assert fake.shared_files == []
    message = fake.ok_calls("chat.postMessage")[0].params
    assert message["thread_ts"] == ts
    assert "*Camera:* X100" in message["text"]
    blocks = message["blocks"] if isinstance(message["blocks"], list) else json.loads(message["blocks"])
    assert blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": "*Camera:* X100"}}
    assert "couldn't attach the annotated image" in json.dumps(blocks[-1])


async def test_channel_the_app_cannot_post_in_refunds_the_photo(slack: SlackHarness, fake: FakeSlack) -> None:
    fake.not_a_member(CHANNEL)  # e.g. the app was removed from the channel while the photo waited
    file = fake.add_file("F0GONE", jpeg())
    ts = fake.next_ts()
    mention = {"type": "app_mention", "user": ALICE, "text": "<@U0BOT>", "ts": ts, "channel": CHANNEL}

    await slack.send_event({**mention, "files": [file]})

    usage = await eventually(lambda: slack.settled_usage(ALICE), what="the quota to be settled")
    assert usage.used == 0
    assert fake.shared_files == []
    assert [c.error for c in fake.calls("files.completeUploadExternal")] == ["not_in_channel"]
    assert fake.calls("chat.postMessage") == []  # a message would be refused just the same


async def test_download_rules(slack: SlackHarness, fake: FakeSlack) -> None:
    source = slack.adapter.source
    padded = jpeg(color=(9, 9, 9)) + b"\0" * 150_000
    liar = FileRef(file_id=fake.add_file("F0LIES", padded, size=1_000)["id"])  # files.info says 1 kB
    with pytest.raises(TooLarge, match=r"^That file is 0\.2 MB; the limit is 0\.1 MB\.$"):
        await source.fetch(_request(liar), liar, 100_000)  # refused on Content-Length
    streamed = FileRef(file_id=fake.add_file("F0STREAM", padded, size=1_000, chunked=True)["id"])
    with pytest.raises(TooLarge, match=r"^That file is more than 0\.1 MB"):
        await source.fetch(_request(streamed), streamed, 100_000)  # no length given: cut off while reading

    evil = "https://evil.example/F0ABROAD.jpg"
    abroad = fake.add_file("F0ABROAD", jpeg(), url_private=evil, url_private_download=evil)
    abroad_ref = FileRef(file_id=abroad["id"])
    with pytest.raises(FetchFailed, match="not sending the bot token"):
        await source.fetch(_request(abroad_ref), abroad_ref, 1_000_000)

    moved = FileRef(file_id=fake.add_file("F0MOVED", jpeg())["id"])
    fake.file_redirects["F0MOVED"] = f"http://127.0.0.2:{fake.port}/files-pri/T-F0X/x.jpg"
    with pytest.raises(FetchFailed, match="not sending the bot token"):
        await source.fetch(_request(moved), moved, 1_000_000)
    assert [d.file_id for d in fake.downloads] == ["F0LIES", "F0STREAM", "F0MOVED"]  # nothing went abroad

    fake.file_redirects["F0MOVED"] = f"{fake.url}/files-pri/{fake.team_id}-F0OK/photo.jpg"
    fake.add_file("F0OK", jpeg(color=(1, 2, 3)))
    data = await source.fetch(_request(moved), moved, 1_000_000)  # followed, on an allowed host
    assert data == jpeg(color=(1, 2, 3))
    assert fake.downloads[-1].authorization == f"Bearer {fake.bot_token}"

    missing = FileRef(file_id="F0NOPE")
    with pytest.raises(PhotoRejected, match="deleted"):
        await source.fetch(_request(missing), missing, 1_000_000)


def _request(ref: FileRef) -> PhotoRequest:
    return PhotoRequest(
        platform="slack", user_id=ALICE, chat_id=DM, message_id="1.1", file=ref, features=frozenset()
    )


# -- security --------------------------------------------------------------------------------


async def test_bad_signature_and_stale_timestamp_are_rejected(slack: SlackHarness, fake: FakeSlack) -> None:
    file = fake.add_file("F0SIG", jpeg())
    body = json.dumps(slack.event_body(file_message(file, channel=DM, ts=fake.next_ts())))
    url = f"{slack.base_url}/slack/events"

    forged = slack.signed_headers(body, "application/json")
    forged["X-Slack-Signature"] = "v0=" + "0" * 64
    async with slack.http.post(url, data=body, headers=forged) as response:
        assert response.status == 401

    stale = slack.signed_headers(body, "application/json", timestamp=int(time.time()) - 400)
    async with slack.http.post(url, data=body, headers=stale) as response:
        assert response.status == 401

    async with slack.http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
        assert response.status == 401

    assert await slack.jobs() == 0
    assert fake.calls() == []  # not even auth.test: nothing reached a listener

    challenge = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"})
    answer = await slack.post(challenge, "application/json")
    assert (answer.status, answer.json) == (200, {"challenge": "c-123"})


async def test_hostile_exif_and_ocr_strings_are_escaped(
    fake: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKESLACK0000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-slack-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    hostile = "<!channel> *URGENT* & <https://evil.example|log in> _x_ ~y~ `z` @here"
    with FakeRekognition() as rekognition:
        box = {"Width": 0.5, "Height": 0.1, "Left": 0.1, "Top": 0.1}
        polygon = [{"X": 0.1, "Y": 0.1}]
        rekognition.set_response(
            "DetectText",
            {
                "TextDetections": [
                    {
                        "DetectedText": "<@U0ALICE> reset your password at <https://evil.example>",
                        "Type": "LINE",
                        "Id": 0,
                        "Confidence": 99.0,
                        "Geometry": {"BoundingBox": box, "Polygon": polygon},
                    }
                ]
            },
        )
        recognizer = RekognitionRecognizer(region="us-east-1", endpoint_url=rekognition.url, max_attempts=1)
        async with running_slack(fake, tmp_path, recognizer=recognizer) as slack:
            photo = jpeg(zeroth={piexif.ImageIFD.Make: hostile.encode(), piexif.ImageIFD.Model: b"X100"})
            file = fake.add_file("F0EVIL", photo)
            await slack.send_event(file_message(file, channel=DM, ts=fake.next_ts()))
            await eventually(lambda: fake.shared_files, what="the annotated image")

    comment = comment_of(fake)
    assert "&lt;!channel&gt;" in comment
    assert "&lt;@U0ALICE&gt;" in comment
    assert "&amp;" in comment
    assert "＠here" in comment
    for dangerous in ("<!channel>", "<@U0ALICE>", "<https://evil", "*URGENT*", "_x_", "~y~", "`z`", "@here"):
        assert dangerous not in comment
    assert "*Text*" in comment  # our own formatting still works
    assert "*Labels:*" in comment


# -- slash command ---------------------------------------------------------------------------


async def test_help_quota_and_features(slack: SlackHarness, fake: FakeSlack) -> None:
    help_text = (await slack.command("help")).text
    assert "/photodetective last" in help_text
    assert "Admin subcommands" not in help_text
    assert "Admin subcommands" in (await slack.command("", user=ADMIN)).text

    quota = (await slack.command("quota")).text
    assert quota.startswith("You have used 0 of 20 photos today")

    shown = (await slack.command("features")).text
    assert shown.startswith("Your photos get: labels, face analysis, text recognition, content moderation.")
    saved = (await slack.command("features labels text")).text
    assert saved.startswith("Saved. Your photos get: labels, text recognition.")
    key = f"slack:{fake.team_id}:{ALICE}"
    assert await slack.service.features_for(key) == frozenset({Feature.LABELS, Feature.TEXT})
    wrong = (await slack.command("features labels,colours")).text
    assert "unknown feature colours" in wrong
    assert "don't know" in (await slack.command("dance")).text


async def test_admin_subcommands(slack: SlackHarness, fake: FakeSlack) -> None:
    assert (await slack.command("stats")).text == "That subcommand is only for PhotoDetective's admins."
    assert (await slack.command(f"grant <@{BOB}|bob> 5")).text.startswith("That subcommand is only")

    granted = (await slack.command(f"grant <@{BOB}|bob> 5", user=ADMIN)).text
    assert granted == f"<@{BOB}> now has 25 photos left today (0 of 25 used)."
    assert (await slack.command(f"block <@{BOB}>", user=ADMIN)).text == f"<@{BOB}> is now blocked."
    assert (await slack.command("quota", user=BOB)).text.startswith("You can't use PhotoDetective")
    assert (await slack.command(f"unblock {BOB}", user=ADMIN)).text == f"<@{BOB}> is no longer blocked."
    assert "mentioning them" in (await slack.command("block @bob", user=ADMIN)).text
    assert "photos charged" in (await slack.command("stats", user=ADMIN)).text


async def test_last_analyses_the_newest_image_here(slack: SlackHarness, fake: FakeSlack) -> None:
    older = fake.add_file("F0OLD", jpeg(color=(200, 0, 0)))
    newer = fake.add_file("F0NEW", jpeg(color=(0, 200, 0)))
    fake.add_message(CHANNEL, {"user": BOB, "files": [older]})
    wanted = fake.add_message(CHANNEL, {"user": BOB, "files": [newer]})
    fake.add_message(CHANNEL, {"user": BOB, "text": "no image here"})
    bot_image = fake.add_file("F0BOTS", jpeg())
    fake.add_message(CHANNEL, {"user": fake.bot_user_id, "bot_id": fake.bot_id, "files": [bot_image]})

    answer = await slack.command("last", response="last")

    assert (answer.status, answer.body) == (200, "")
    await eventually(
        lambda: fake.reactions(CHANNEL, wanted["ts"]) == {REACTION_DONE}, what="the done reaction"
    )
    assert [c.params["file"] for c in fake.ok_calls("files.info")] == ["F0NEW"]
    assert fake.shared_files[0].thread_ts == wanted["ts"]
    assert slack.responses("last")[0]["text"] == "Got it: analysing your photo."

    again = await slack.command("last", response="again")
    assert again.status == 200
    note = await eventually(lambda: slack.responses("again"), what="the answer")
    assert note[0]["text"].startswith("That photo has already been analysed")
    assert await slack.jobs() == 1


async def test_last_where_the_app_is_not_a_member(slack: SlackHarness, fake: FakeSlack) -> None:
    fake.not_a_member("C0ELSEWHERE")
    await slack.command("last", channel="C0ELSEWHERE", response="outside")
    note = await eventually(lambda: slack.responses("outside"), what="the answer")
    assert "Invite me first" in note[0]["text"]


async def test_file_link_is_analysed_only_when_shared_here_or_owned(
    slack: SlackHarness, fake: FakeSlack
) -> None:
    shared_ts = fake.next_ts()
    here = fake.add_file("F0HERE", jpeg(), user=BOB, shares={CHANNEL: [shared_ts]})
    secret = fake.add_file("F0SECRET", jpeg(), user=BOB, shares={"G0PRIVATE": [fake.next_ts()]})
    own = fake.add_file("F0OWN", jpeg(), user=ALICE)

    await slack.command(f"<https://fake.slack.com/files/{BOB}/{secret['id']}/photo.jpg>", response="secret")
    note = await eventually(lambda: slack.responses("secret"), what="the refusal")
    assert note[0]["text"].startswith("I can only analyse a file that was shared in this conversation")

    await slack.command(
        f"https://files.slack.com/files-pri/{fake.team_id}-{here['id']}/photo.jpg", response="here"
    )
    await eventually(lambda: fake.reactions(CHANNEL, shared_ts) == {REACTION_DONE}, what="the reaction")
    assert fake.shared_files[0].thread_ts == shared_ts

    await slack.command(own["id"], response="own")
    await eventually(lambda: len(fake.shared_files) == 2, what="the second answer")
    assert fake.shared_files[1].thread_ts is None  # a new message in the channel
    assert fake.shared_files[1].channel_id == CHANNEL
    assert await slack.jobs() == 2


# -- shortcut --------------------------------------------------------------------------------


async def test_message_shortcut(slack: SlackHarness, fake: FakeSlack) -> None:
    file = fake.add_file("F0SHORT", jpeg(), user=ALICE)
    ts = fake.next_ts()
    message = {"type": "message", "user": ALICE, "ts": ts, "text": "", "files": [file]}

    answer = await slack.shortcut(message, user=BOB, response="ok")

    assert (answer.status, answer.body) == (200, "")
    await eventually(lambda: fake.reactions(CHANNEL, ts) == {REACTION_DONE}, what="the reaction")
    assert slack.responses("ok")[0]["text"] == "Got it: analysing your photo."
    usage = await slack.service.usage(f"slack:{fake.team_id}:{BOB}")
    assert usage.used == 1  # the person who asked is charged

    plain = {"type": "message", "user": ALICE, "ts": fake.next_ts(), "text": "just words"}
    await slack.shortcut(plain, response="none")
    note = await eventually(lambda: slack.responses("none"), what="the answer")
    assert note[0]["text"] == "That message has no image I can analyse."


# -- transport -------------------------------------------------------------------------------


async def test_not_receiving_before_start_answers_503(fake: FakeSlack, tmp_path: Path) -> None:
    async with running_slack(fake, tmp_path, start=False) as slack:
        file = fake.add_file("F0EARLY", jpeg())
        answer = await slack.send_event(file_message(file, channel=DM, ts=fake.next_ts()))
        assert answer.status == 503
        assert await slack.jobs() == 0


async def test_socket_mode_smoke(fake: FakeSlack, tmp_path: Path) -> None:
    async with running_slack(fake, tmp_path, slack_mode="socket", slack_signing_secret=None) as slack:
        assert slack.adapter.routes() == []
        await eventually(lambda: fake.socket_connections == 1, what="the WebSocket connection")
        file = fake.add_file("F0SOCKET", jpeg())
        ts = fake.next_ts()
        body = slack.event_body(file_message(file, channel=DM, ts=ts))
        fake.send_envelope(events_api_envelope(body, "env-1"))

        acks = await eventually(lambda: fake.socket_acks, what="the envelope ack")
        assert acks[0]["envelope_id"] == "env-1"
        await eventually(lambda: fake.reactions(DM, ts) == {REACTION_DONE}, what="the done reaction")
        assert len(fake.shared_files) == 1


# -- factory and entry point -----------------------------------------------------------------


async def test_create_needs_the_right_secrets(
    fake: FakeSlack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stores = build_stores(make_settings(data_dir=tmp_path))
    try:
        service = build_service(make_settings(data_dir=tmp_path), stores, frozenset())
        cases = [
            ({}, "PHOTODETECTIVE_SLACK_BOT_TOKEN"),
            ({"slack_bot_token": "xoxb-1"}, "PHOTODETECTIVE_SLACK_SIGNING_SECRET"),
            ({"slack_bot_token": "xoxb-1", "slack_mode": "socket"}, "PHOTODETECTIVE_SLACK_APP_TOKEN"),
        ]
        caplog.set_level(logging.INFO, logger="adapters.slack")
        for values, variable in cases:
            caplog.clear()
            settings = make_settings(data_dir=tmp_path, **values)
            assert create(settings, service) is None
            assert [r.getMessage() for r in caplog.records if variable in r.getMessage()]
        ok = make_settings(data_dir=tmp_path, slack_bot_token="xoxb-1", slack_signing_secret="s")
        adapter = create(ok, service)
        assert isinstance(adapter, SlackAdapter)
        assert [r.path for r in adapter.routes()] == ["/slack/events"]  # type: ignore[attr-defined]
        await adapter.close()
    finally:
        await stores.close()


async def test_entry_point_loads_the_adapter(tmp_path: Path) -> None:
    # A packaging mistake must fail here, not skip: without the entry point `photodetective run`
    # silently starts no Slack at all.
    installed = {e.name: e.value for e in entry_points(group=ENTRY_POINT_GROUP)}
    assert installed.get("slack") == "adapters.slack:create", installed
    settings = make_settings(data_dir=tmp_path, slack_bot_token="xoxb-1", slack_signing_secret="s")
    stores = build_stores(settings)
    try:
        adapters = load_adapters(settings, build_service(settings, stores, frozenset()))
        slack = [a for a in adapters if a.name == "slack"]
        assert len(slack) == 1
        assert isinstance(slack[0], SlackAdapter)
        for adapter in adapters:
            await adapter.close()
    finally:
        await stores.close()
