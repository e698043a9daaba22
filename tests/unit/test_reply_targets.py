"""Reply targets: each adapter's frozen type survives the queue, including payloads older code wrote."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest

from adapters.slack.replies import ReplyTarget
from adapters.telegram.feedback import Target
from bot.photo_requests import FileRef, PhotoRequest
from core.analysis_types import Feature


def request(reply_to: dict[str, object], *, private: bool = True) -> PhotoRequest:
    """A request with this `reply_to`, written to JSON and read back as the queue does."""
    sent = PhotoRequest(
        "telegram", "7", "70", "5", FileRef("f"), frozenset({Feature.LABELS}), private=private
    )
    data = sent.to_json()
    data["reply_to"] = reply_to
    return PhotoRequest.from_json(json.loads(json.dumps(data)))


def test_a_telegram_target_round_trips_through_the_queue() -> None:
    target = Target(70, 5, thread_id=9, album="a1", private=False, source="photo")
    back = Target.from_request(request(dict(target.to_reply_to()), private=False))
    assert back == target
    assert back.compressed
    with pytest.raises(FrozenInstanceError):
        back.chat_id = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({}, Target(70, 5)),  # the oldest payloads: the request's own ids
        ({"chat_id": "70"}, Target(70, 5)),
        (
            {"chat_id": 70, "message_id": 5, "thread_id": None, "album": None},
            Target(70, 5),
        ),  # before "source"
        ({"chat_id": 70, "message_id": 6, "source": "document"}, Target(70, 6, source="document")),
    ],
)
def test_old_telegram_payloads_still_read(stored: dict[str, object], expected: Target) -> None:
    assert Target.from_request(request(stored)) == expected


def test_a_slack_target_round_trips_and_reads_old_payloads() -> None:
    target = ReplyTarget("C1", "U1", thread_ts="1.2", message_ts="1.2")
    assert ReplyTarget.from_reply_to(request(dict(target.to_reply_to())).reply_to) == target
    assert ReplyTarget.from_reply_to({"channel": "C1"}) == ReplyTarget("C1", "")
