"""Settings come from the environment and .env, are validated once, and name the variable when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.slack.config import SlackSettings
from adapters.telegram.config import TelegramSettings
from bot.settings import Settings, SettingsError, installed_sections, load_settings, parse_features
from bot.settings_doc import (
    BEGIN,
    END,
    MODELS_PAGE,
    SETTINGS_PAGE,
    env_example,
    models_block,
    settings_block,
    write_into,
)
from core.analysis_types import DEFAULT_FEATURES, Feature

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("PHOTODETECTIVE_"):
            monkeypatch.delenv(name)


def test_defaults_need_no_configuration() -> None:
    settings = load_settings(None)
    assert settings.backend == "auto"
    assert settings.features == DEFAULT_FEATURES
    assert settings.image_limits().max_side == 1920
    assert settings.section(TelegramSettings).token is None
    assert settings.section(SlackSettings).bot_token is None


def test_environment_and_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PHOTODETECTIVE_MAX_SIDE=1280\nPHOTODETECTIVE_FEATURES=labels,text\n")
    monkeypatch.setenv("PHOTODETECTIVE_QUOTA_DAILY_LIMIT", "7")
    monkeypatch.setenv("PHOTODETECTIVE_ADMINS", "telegram:1, slack:T1:U2")
    settings = load_settings(env_file)
    assert settings.max_side == 1280
    assert settings.features == {Feature.LABELS, Feature.TEXT}
    assert settings.quota_daily_limit == 7
    assert settings.admins == {"telegram:1", "slack:T1:U2"}


def test_environment_wins_over_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PHOTODETECTIVE_MAX_SIDE=1280\n")
    monkeypatch.setenv("PHOTODETECTIVE_MAX_SIDE", "1600")
    assert load_settings(env_file).max_side == 1600


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PHOTODETECTIVE_MAX_SIDE", "10"),
        ("PHOTODETECTIVE_MAX_SIDE", "big"),
        ("PHOTODETECTIVE_BACKEND", "watson"),
        ("PHOTODETECTIVE_FEATURES", "labels,colour"),
        ("PHOTODETECTIVE_QUOTA_TIMEZONE", "Mars/Olympus_Mons"),
        ("PHOTODETECTIVE_TELEGRAM_MODE", "carrier-pigeon"),
    ],
)
def test_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings(None)
    assert variable in str(error.value)


def test_secrets_are_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTODETECTIVE_TELEGRAM_TOKEN", "123:very-secret-token")
    settings = load_settings(None)
    telegram = settings.section(TelegramSettings)
    assert "very-secret-token" not in repr(settings)
    assert "very-secret-token" not in repr(telegram)
    assert telegram.token is not None
    assert telegram.token.get_secret_value() == "123:very-secret-token"


def test_feature_words() -> None:
    assert parse_features("none") == frozenset()
    assert Feature.CELEBRITIES not in parse_features("all")
    with pytest.raises(ValueError, match="unknown feature"):
        parse_features("labels,selfie")


def test_settings_reference_is_current() -> None:
    text = (ROOT / SETTINGS_PAGE).read_text(encoding="utf-8")
    assert BEGIN in text, f"{SETTINGS_PAGE} lacks the settings table; run `make docs`"
    current = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert current == settings_block(), f"{SETTINGS_PAGE} settings table is stale: run `make docs`"
    sections = installed_sections()
    assert {kind.__name__ for kind in sections} >= {"TelegramSettings", "SlackSettings"}
    every = len(Settings.model_fields) + sum(len(kind.model_fields) for kind in sections)
    assert every == current.count("| `PHOTODETECTIVE_")
    assert "| `PHOTODETECTIVE_TELEGRAM_TOKEN` |" in current


def test_env_example_is_current() -> None:
    example = ROOT / ".env.example"
    assert example.read_text(encoding="utf-8") == env_example(), (
        "stale .env.example: run `python -m bot.settings_doc --env-example .env.example`"
    )


def test_models_table_is_current() -> None:
    assert models_block() in (ROOT / MODELS_PAGE).read_text(encoding="utf-8"), (
        f"{MODELS_PAGE} model table is stale: run `make docs`"
    )


def test_platform_sections_load_with_the_application_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTODETECTIVE_SLACK_FILE_HOSTS", "files.slack.com, files-edu.slack.com")
    monkeypatch.setenv("PHOTODETECTIVE_TELEGRAM_MODE", "webhook")
    settings = load_settings(None)
    assert settings.section(SlackSettings).file_hosts == {"files.slack.com", "files-edu.slack.com"}
    assert settings.section(TelegramSettings).mode == "webhook"


def test_every_bad_value_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTODETECTIVE_MAX_SIDE", "10")
    monkeypatch.setenv("PHOTODETECTIVE_SLACK_MODE", "smoke-signals")
    with pytest.raises(SettingsError) as error:
        load_settings(None)
    assert "PHOTODETECTIVE_MAX_SIDE" in str(error.value)
    assert "PHOTODETECTIVE_SLACK_MODE" in str(error.value)


def test_settings_built_in_code_have_every_platform_off() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.section(TelegramSettings).token is None
    assert settings.section(SlackSettings).bot_token is None
    given = settings.with_sections(TelegramSettings(_env_file=None, token="1:abc"))  # type: ignore[call-arg,arg-type]
    token = given.section(TelegramSettings).token
    assert token is not None
    assert token.get_secret_value() == "1:abc"
    assert settings.section(TelegramSettings).token is None  # the original is unchanged


def test_writing_docs_without_markers_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "moved.md"
    page.write_text("# A page that lost its generated block\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no generated block markers"):
        write_into(page)
    page.write_text(f"# Settings\n\n{BEGIN}\nold\n{END}\n", encoding="utf-8")
    write_into(page)
    assert settings_block() in page.read_text(encoding="utf-8")
