"""Which features count towards the daily cost cap: only what someone is billed for."""

from __future__ import annotations

from bot.describe_wiring import unbilled_features
from bot.service import billed_calls
from core.analysis_types import Feature
from tests.settings_helpers import settings_from

LOCAL = frozenset({Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION})


def test_the_embedded_recognizer_bills_nothing() -> None:
    free = unbilled_features(settings_from(), "local", LOCAL)
    assert billed_calls(LOCAL, LOCAL - free) == 0


def test_rekognition_bills_every_feature() -> None:
    free = unbilled_features(settings_from(), "rekognition", LOCAL)
    assert billed_calls(LOCAL, LOCAL - free) == len(LOCAL)


def test_a_hosted_describer_beside_the_embedded_recognizer_is_still_billed() -> None:
    settings = settings_from(
        describe_backend="openai", describe_url="https://api.example.com/v1", describe_model="m"
    )
    with_describe = LOCAL | {Feature.DESCRIBE}
    free = unbilled_features(settings, "local", with_describe)
    assert billed_calls(with_describe, with_describe - free) == 1


def test_a_self_hosted_describer_is_free() -> None:
    settings = settings_from(
        describe_backend="openai", describe_url="http://localhost:11434/v1", describe_model="m"
    )
    with_describe = LOCAL | {Feature.DESCRIBE}
    free = unbilled_features(settings, "rekognition", with_describe)
    assert billed_calls(with_describe, with_describe - free) == len(LOCAL)
