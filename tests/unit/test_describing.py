"""The describe stage around the recognizer: its rules (moderation first, failures leave the rest),
how tags join the labels, and how the caption travels (summary, JSON, stored answers, settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.analysis_json import analysis_json
from bot.describe_wiring import build_describer, with_describer
from bot.describing import NOT_SENT_EXPLICIT, NOT_SENT_UNCHECKED, DescribingRecognizer
from bot.photo_requests import AnalysisReply, FileRef, PhotoRequest
from bot.service import Accepted
from bot.settings import Settings, SettingsError, load_settings
from bot.stored_answers import StoredAnswer, dump_answer, load_answer
from bot.wiring import build_service, build_stores
from core.analysis_types import (
    DEFAULT_FEATURES,
    Analysis,
    ErrorKind,
    Feature,
    FeatureError,
    Label,
    ModerationLabel,
    PreparedPhoto,
)
from core.describe.errors import DescribeFailed
from core.recognizers.base import NullRecognizer
from core.summary import DescriptionSection, LabelsSection, build_summary, render_text
from tests.describe_helpers import ScriptedDescriber, prepared_photo

ASKED = frozenset({Feature.LABELS, Feature.MODERATION, Feature.DESCRIBE})


class FixedRecognizer:
    """A recognizer double answering one analysis (the stage is under test, not recognition)."""

    name = "fixed"
    capabilities = frozenset({Feature.LABELS, Feature.MODERATION})

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.asked: list[frozenset[Feature]] = []

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        self.asked.append(features)
        return self.analysis


def recognized(*moderation: ModerationLabel, moderation_ran: bool = True) -> Analysis:
    features = {Feature.LABELS} | ({Feature.MODERATION} if moderation_ran else set())
    return Analysis(
        backend="fixed",
        features=frozenset(features),
        labels=(Label("Person", 0.96), Label("Gravel", 0.4)),
        moderation=moderation,
    )


async def test_caption_and_new_tags_after_the_recognizers_labels() -> None:
    describer = ScriptedDescriber("A man on gravel by a Ferris wheel.", ["gravel", "Ferris wheel"])
    recognizer = FixedRecognizer(recognized())
    stage = DescribingRecognizer(recognizer, describer)
    analysis = await stage.analyze(prepared_photo(), ASKED)
    assert recognizer.asked == [ASKED - {Feature.DESCRIBE}]
    assert describer.described[0][1] == ("Person", "Gravel")  # labels as context, best first
    assert analysis.description is not None
    assert analysis.description.text == "A man on gravel by a Ferris wheel."
    assert [(label.name, label.source) for label in analysis.labels] == [
        ("Person", ""),
        ("Gravel", ""),
        ("Ferris wheel", "describe"),
    ]
    assert Feature.DESCRIBE in analysis.features
    summary = build_summary(analysis, prepared_photo().exif, show_location=False)
    assert isinstance(summary.sections[0], DescriptionSection)
    labels = summary.get(LabelsSection)
    assert labels is not None
    assert [item.text for item in labels.items] == ["Person 96%", "Gravel 40%", "Ferris wheel"]
    assert render_text(summary).splitlines()[0] == "Description: A man on gravel by a Ferris wheel."


async def test_not_asked_means_not_sent() -> None:
    describer = ScriptedDescriber()
    analysis = await DescribingRecognizer(FixedRecognizer(recognized()), describer).analyze(
        prepared_photo(), ASKED - {Feature.DESCRIBE}
    )
    assert describer.described == []
    assert analysis.description is None
    assert Feature.DESCRIBE not in analysis.features


async def test_an_explicit_photo_is_not_sent_to_a_hosted_model() -> None:
    describer = ScriptedDescriber(hosted=True)
    explicit = recognized(ModerationLabel("Exposed Buttocks", 0.9, "Explicit"))
    analysis = await DescribingRecognizer(FixedRecognizer(explicit), describer).analyze(
        prepared_photo(), ASKED
    )
    assert describer.described == []
    assert analysis.description is None
    assert analysis.errors == (FeatureError(Feature.DESCRIBE, ErrorKind.ERROR, NOT_SENT_EXPLICIT),)
    assert analysis.labels == explicit.labels  # the rest of the answer is intact


async def test_an_unchecked_photo_is_not_sent_to_a_hosted_model() -> None:
    describer = ScriptedDescriber(hosted=True)
    stage = DescribingRecognizer(FixedRecognizer(recognized(moderation_ran=False)), describer)
    analysis = await stage.analyze(prepared_photo(), ASKED)
    assert describer.described == []
    assert analysis.errors[0].message == NOT_SENT_UNCHECKED


@pytest.mark.parametrize(("hosted", "allow"), [(False, False), (True, True)])
async def test_explicit_goes_to_a_self_hosted_model_or_when_allowed(hosted: bool, allow: bool) -> None:
    describer = ScriptedDescriber(hosted=hosted)
    explicit = recognized(ModerationLabel("Explicit", 0.95))
    stage = DescribingRecognizer(FixedRecognizer(explicit), describer, allow_explicit=allow)
    analysis = await stage.analyze(prepared_photo(), ASKED)
    assert analysis.description is not None


async def test_a_failed_description_leaves_the_rest_with_a_note() -> None:
    failure = DescribeFailed(ErrorKind.THROTTLED, "The describer is busy (429); try again later.")
    stage = DescribingRecognizer(FixedRecognizer(recognized()), ScriptedDescriber(failure=failure))
    analysis = await stage.analyze(prepared_photo(), ASKED)
    assert analysis.description is None
    assert analysis.labels == recognized().labels
    assert analysis.errors == (FeatureError(Feature.DESCRIBE, ErrorKind.THROTTLED, str(failure)),)
    text = render_text(build_summary(analysis, prepared_photo().exif, show_location=False))
    assert "Failed: description (throttled: The describer is busy (429); try again later.)" in text


async def test_a_slow_description_times_out_and_the_photo_is_still_answered() -> None:
    stage = DescribingRecognizer(FixedRecognizer(recognized()), ScriptedDescriber(delay_s=5), timeout_s=0.05)
    analysis = await stage.analyze(prepared_photo(), ASKED)
    assert analysis.errors[0].feature is Feature.DESCRIBE
    assert analysis.errors[0].kind is ErrorKind.TIMEOUT


def test_describe_is_a_capability_only_with_a_describer() -> None:
    stage = DescribingRecognizer(NullRecognizer(), ScriptedDescriber())
    assert stage.capabilities == {Feature.DESCRIBE}
    summary = build_summary(
        Analysis(backend="none"),
        prepared_photo().exif,
        show_location=False,
        requested=DEFAULT_FEATURES | {Feature.DESCRIBE},
        capabilities=NullRecognizer.capabilities,
    )
    assert Feature.DESCRIBE not in summary.recognizer.unsupported  # no "not available" note for it


async def test_json_description_and_describe_labels() -> None:
    stage = DescribingRecognizer(FixedRecognizer(recognized()), ScriptedDescriber("A dog.", ["leash"]))
    photo = prepared_photo()
    document = analysis_json(await stage.analyze(photo, ASKED), photo, file="a.jpg", annotated=None)
    assert document["description"] == {"text": "A dog.", "backend": "double", "model": "double-1"}
    assert document["labels"][-1] == {
        "name": "leash",
        "confidence": None,
        "parents": [],
        "categories": [],
        "source": "describe",
    }
    assert "source" not in document["labels"][0]
    plain = analysis_json(recognized(), photo, file="a.jpg", annotated=None)
    assert "description" not in plain


async def test_a_stored_answer_keeps_the_caption_and_tags() -> None:
    stage = DescribingRecognizer(FixedRecognizer(recognized()), ScriptedDescriber("A dog.", ["leash"]))
    analysis = await stage.analyze(prepared_photo(), ASKED)
    request = PhotoRequest("telegram", "7", "7", "1", FileRef("f"), ASKED)
    reply = AnalysisReply(
        request, analysis, prepared_photo().exif, b"jpeg", 10, 20, ASKED, show_location=False
    )
    loaded = load_answer(dump_answer(StoredAnswer(reply), keep_prepared=False)).outcome
    assert isinstance(loaded, AnalysisReply)
    assert loaded.analysis.description == analysis.description
    assert loaded.analysis.labels == analysis.labels


def test_settings_need_a_model_and_an_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHOTODETECTIVE_DESCRIBE_BACKEND", "openai")
    with pytest.raises(SettingsError) as failed:
        load_settings(env_file=None, sections=[])
    assert "PHOTODETECTIVE_DESCRIBE_MODEL" in str(failed.value)
    monkeypatch.setenv("PHOTODETECTIVE_DESCRIBE_MODEL", "llava")
    with pytest.raises(SettingsError) as failed:
        load_settings(env_file=None, sections=[])
    assert "PHOTODETECTIVE_DESCRIBE_URL" in str(failed.value)
    monkeypatch.setenv("PHOTODETECTIVE_DESCRIBE_URL", "ftp://x")
    monkeypatch.setenv("PHOTODETECTIVE_DESCRIBE_API_KEY", "sk-secret-value")
    settings = load_settings(env_file=None, sections=[])
    assert "sk-secret-value" not in repr(settings)
    with pytest.raises(SettingsError, match="http"):
        build_describer(settings)


def test_describe_is_a_default_feature_only_with_a_describer(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).features == DEFAULT_FEATURES  # type: ignore[call-arg]
    monkeypatch.setenv("PHOTODETECTIVE_DESCRIBE_BACKEND", "bedrock")
    monkeypatch.setenv("PHOTODETECTIVE_DESCRIBE_MODEL", "amazon.nova-lite-v1:0")
    assert load_settings(env_file=None, sections=[]).features == DEFAULT_FEATURES | {Feature.DESCRIBE}
    monkeypatch.setenv("PHOTODETECTIVE_FEATURES", "labels")
    assert load_settings(env_file=None, sections=[]).features == {Feature.LABELS}  # the operator's list wins


def test_no_describer_by_default_leaves_the_recognizer_alone() -> None:
    recognizer = NullRecognizer()
    assert Settings(_env_file=None).describe_backend == "none"  # type: ignore[call-arg]
    assert with_describer(recognizer, Settings(_env_file=None)) is recognizer  # type: ignore[call-arg]


def test_openai_describer_from_settings() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        describe_backend="openai",
        describe_model="llava",
        describe_url="http://localhost:11434/v1",
    )
    stage = with_describer(NullRecognizer(), settings)
    assert isinstance(stage, DescribingRecognizer)
    assert stage.describer.name == "openai"
    assert not stage.describer.hosted


@pytest.mark.parametrize(
    ("url", "units"),
    [("http://localhost:11434/v1", 1), ("https://vision.example.com/v1", 2)],
)
async def test_the_cost_cap_counts_a_describer_only_when_it_bills(
    tmp_path: Path, url: str, units: int
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path,
        describe_backend="openai",
        describe_model="llava",
        describe_url=url,
    )
    stores = build_stores(settings)
    capabilities = frozenset({Feature.LABELS, Feature.DESCRIBE})
    service = build_service(settings, stores, capabilities, backend="rekognition")
    try:
        request = PhotoRequest("web", "alice", "alice", "m1", FileRef("f"), capabilities)
        assert isinstance(await service.submit(request), Accepted)
        stats = await stores.quota.stats(service.clock(), service.policy)
    finally:
        await stores.close()
    assert stats.global_calls == units  # Rekognition's labels, plus the describer when it is a hosted one
