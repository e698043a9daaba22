"""The neutral reply (bot.presentation) and the shared texts (bot.notices) every adapter renders."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from adapters.slack.commands import stats_text, usage_text
from adapters.slack.render import answer_mrkdwn
from adapters.telegram.render import answer_blocks, split_blocks
from bot.notices import (
    TOO_LARGE,
    file_too_large,
    plain_text,
    quota_report,
    reason_code,
    stats_report,
    usage_line,
)
from bot.photo_requests import AnalysisReply, FailureReply, FileRef, PhotoRequest
from bot.presentation import Notice, PhotoAnswer, Style, present, section_block
from bot.quota.models import Refusal, Stats, Usage, UserCount
from core.analysis_types import Feature
from core.summary import HiddenLocationSection, LocationSection
from tests.unit.test_slack_render import EXIF, rich

REQUEST = PhotoRequest("telegram", "7", "7", "1", FileRef("f"), frozenset({Feature.LABELS}))
UTC_ZONE = ZoneInfo("UTC")


def test_a_failure_becomes_a_notice_with_its_reason_and_words() -> None:
    notice = present(FailureReply(REQUEST, "not_image", "That is not a photo.", user_fault=True))
    assert notice == Notice(REQUEST, "not_image", "That is not a photo.")


def test_an_analysis_becomes_one_answer_both_platforms_word_alike() -> None:
    reply = AnalysisReply(REQUEST, rich(), EXIF, b"jpeg", 10, 20, frozenset(Feature), show_location=True)
    answer = present(reply)
    assert isinstance(answer, PhotoAnswer)
    assert (answer.image.jpeg, answer.image.width, answer.image.height) == (b"jpeg", 10, 20)
    assert not answer.exif_empty
    assert answer.blocks[-1].note  # the recognizer's block, and only that one
    assert not any(block.note for block in answer.blocks[:-1])

    # The same words on both platforms: strip each one's markup and decorations and compare.
    html = "\n".join(split_blocks(answer_blocks(answer.blocks), 100_000, 100_000))
    telegram = re.sub(r"<[^>]+>", "", html).replace("⚠️ ", "").replace("&lt;", "<").replace("&gt;", ">")
    slack = answer_mrkdwn(answer.blocks)
    slack = re.sub(r" · <https://[^|]+\|map>", "", slack).replace(":warning: ", "").replace("*", "")
    slack = slack.replace("&lt;", "<").replace("&gt;", ">").replace("• ", "  ")
    slack = slack.translate(str.maketrans({"∗": "*", "ˍ": "_", "ˋ": "`"}))
    assert telegram.replace("&amp;", "&") == slack.replace("&amp;", "&")


def test_a_location_links_a_map_and_a_hidden_one_carries_nothing() -> None:
    shown = section_block(LocationSection(-33.5, 151.25))
    places = [part for line in shown.lines for part in line if part.style is Style.PLACE]
    assert len(places) == 1
    assert places[0].href is not None
    assert "openstreetmap.org" in places[0].href
    hidden = section_block(HiddenLocationSection())
    assert all(part.href is None for line in hidden.lines for part in line)
    assert "33.5" not in repr(hidden)


@pytest.mark.parametrize(
    ("size", "limit", "at_least", "message"),
    [
        (2_500_000, 1_000_000, False, "That file is 2.5 MB; the limit is 1 MB."),
        (25_000_001, 25_000_000, False, "That file is just over the 25 MB limit."),
        (150_000, 100_000, True, "That file is more than 0.1 MB; the limit is 0.1 MB."),
    ],
)
def test_one_reason_code_for_files_too_large(size: int, limit: int, at_least: bool, message: str) -> None:
    refusal = file_too_large(size, limit, at_least=at_least)
    assert (refusal.reason, str(refusal)) == (TOO_LARGE, message)


def test_telegram_source_uses_the_same_code_for_its_own_cap() -> None:
    from adapters.telegram.limits import MAX_DOWNLOAD_BYTES
    from adapters.telegram.source import too_large

    assert too_large(30_000_000, MAX_DOWNLOAD_BYTES).reason == TOO_LARGE
    assert too_large(2_000_000, 1_000_000).reason == TOO_LARGE


USAGE = Usage(
    user="slack:T1:U2B",
    day=date(2025, 6, 10),
    used=2,
    limit=6,
    extra=1,
    remaining=4,
    resets_at=datetime(2025, 6, 11, tzinfo=UTC),
    blocked=False,
    active_jobs=1,
)
NOW = datetime(2025, 6, 10, 22, 30, tzinfo=UTC)


def test_quota_report_in_lines_and_compact() -> None:
    lines = plain_text(quota_report(USAGE, NOW, zone=UTC_ZONE, admin=True))
    assert lines.splitlines() == [
        "You have 4 photos left today: 2 of 6 used (including 1 extra for today).",
        "Your quota resets at 00:00 UTC (in 1 h 30 min).",
        "1 photo of yours being analysed right now.",
        "As an admin, the limits don't apply to you.",
    ]
    assert usage_text(USAGE, NOW, UTC_ZONE, admin=False) == (
        "You have used 2 of 6 photos today (including 1 extra for today): *4 left*. 1 in progress. "
        "Your quota resets at 00:00 UTC (in 1 h 30 min)."
    )
    blocked = replace(USAGE, blocked=True)
    assert plain_text(quota_report(blocked, NOW, zone=UTC_ZONE, admin=False)).startswith(
        "You can't use this bot at the moment."
    )


def test_stats_report_plain_and_with_mentions() -> None:
    stats = Stats(
        day=date(2025, 6, 10),
        charged=3,
        refunded=1,
        refusals={Refusal.RATE: 2},
        global_calls=5,
        global_cap=None,
        top_users=(UserCount("slack:T1:U2B", 2), UserCount("telegram:9", 1)),
    )
    assert plain_text(stats_report(stats)).splitlines() == [
        "2025-06-10: 3 photos charged, 1 refunded; recognizer calls 5 (no cap)",
        "refusals: rate 2",
        "  slack:T1:U2B: 2",
        "  telegram:9: 1",
    ]
    assert stats_text(stats, "T1").splitlines() == [
        "*2025-06-10*: 3 photos charged, 1 refunded; recognizer calls 5 (no cap)",
        "refusals: rate 2",
        "• <@U2B>: 2",
        "• telegram:9: 1",
    ]
    assert usage_line(USAGE).startswith("slack:T1:U2B: 2 of 6 photos used on 2025-06-10 (4 left)")


def test_the_cores_byte_limit_has_the_same_code() -> None:
    from core.errors import TooLarge, TooSmall

    assert reason_code(TooLarge("too_many_bytes", "big")) == TOO_LARGE
    assert reason_code(TooLarge("too_many_pixels", "wide")) == "too_many_pixels"  # a different cause
    assert reason_code(TooSmall("too_small", "tiny")) == "too_small"
