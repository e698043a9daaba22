"""Where shell commands keep state: operator commands refuse a missing data folder, `analyze` never
litters the folder it runs in.

Each test starts in an empty working directory with a cache folder of its own, as an operator
would who runs a command outside the service's environment.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import main
from bot.data_folder import analyze_state_folder, operator_state, redacted_redis_url
from tests.fakes.rekognition import FakeRekognition
from tests.settings_helpers import settings_from

EXIT_USAGE = 2


@pytest.fixture(autouse=True)
def empty_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty working directory, no .env, no AWS files, and a cache folder in tmp_path."""
    work = tmp_path / "somewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("PHOTODETECTIVE_DATA_DIR", raising=False)
    monkeypatch.delenv("PHOTODETECTIVE_REDIS_URL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return work


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ("quota", "show", "telegram:42"),
        ("quota", "grant", "telegram:42", "2"),
        ("jobs", "stats"),
        ("jobs", "dead"),
        ("web", "user", "add", "alice"),
        ("web", "user", "list"),
    ],
    ids=" ".join,
)
def test_operator_commands_refuse_a_data_folder_that_is_not_there(
    argv: tuple[str, ...], empty_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(*argv)

    assert code == EXIT_USAGE
    assert out == ""
    assert err.count("\n") == 1
    assert f"no data folder at {empty_folder / 'data'}" in err
    assert "PHOTODETECTIVE_DATA_DIR is not set" in err
    assert list(empty_folder.iterdir()) == []  # nothing was created
    assert capsys.readouterr().err == ""


def test_a_configured_folder_that_is_not_there_is_named_with_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "srv" / "state"
    monkeypatch.setenv("PHOTODETECTIVE_DATA_DIR", str(missing))

    code, _, err = run("quota", "show", "telegram:42")

    assert code == EXIT_USAGE
    assert f"no data folder at {missing} (PHOTODETECTIVE_DATA_DIR={missing})" in err
    assert not missing.exists()


def test_an_existing_folder_is_used_and_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PHOTODETECTIVE_DATA_DIR", str(state))
    monkeypatch.setenv("PHOTODETECTIVE_QUOTA_DAILY_LIMIT", "7")

    code, out, _ = run("quota", "show", "telegram:42")

    assert code == 0
    assert out.startswith("telegram:42: 0 of 7 photos used")
    assert capsys.readouterr().err == f"using the data folder {state} (PHOTODETECTIVE_DATA_DIR={state})\n"


def test_the_web_link_says_which_settings_made_it(
    monkeypatch: pytest.MonkeyPatch, empty_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (empty_folder / "data").mkdir()
    monkeypatch.setenv("PHOTODETECTIVE_HTTP_PORT", "8099")

    code, out, _ = run("web", "user", "add", "alice")

    assert code == 0
    assert "http://127.0.0.1:8099/signin/" in out
    err = capsys.readouterr().err
    assert f"using the data folder {empty_folder / 'data'}" in err
    assert "PHOTODETECTIVE_HTTP_HOST and PHOTODETECTIVE_HTTP_PORT" in err
    assert "PHOTODETECTIVE_WEB_PUBLIC_URL is not set" in err


def test_redis_is_named_without_its_password() -> None:
    line = operator_state(settings_from(redis_url="redis://user:s3cret@cache.internal:6380/2"))
    assert line == "using Redis at redis://cache.internal:6380/2 (PHOTODETECTIVE_REDIS_URL)"
    assert redacted_redis_url("rediss://:pw@h/0") == "rediss://h/0"
    assert redacted_redis_url("unix://:pw@/run/redis.sock?db=1") == "unix:///run/redis.sock"


@pytest.fixture
def rekognition(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRekognition]:
    with FakeRekognition() as fake:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKECLI000000000")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-cli-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL", fake.url)
        monkeypatch.setenv("PHOTODETECTIVE_REKOGNITION_MAX_ATTEMPTS", "1")
        yield fake


def photo(folder: Path) -> Path:
    path = folder / "photo.jpg"
    Image.new("RGB", (320, 240), (90, 140, 200)).save(path, "JPEG")
    return path


def test_analyze_leaves_nothing_in_the_folder_it_runs_in(
    rekognition: FakeRekognition, empty_folder: Path, tmp_path: Path
) -> None:
    source = photo(tmp_path)

    code, _, err = run("analyze", str(source), "--backend", "rekognition", "--features", "labels")

    assert code == 0, err
    assert rekognition.requests
    assert list(empty_folder.iterdir()) == [empty_folder / "photo.annotated.jpg"]
    assert (tmp_path / "cache" / "photodetective" / "rate.sqlite3").is_file()


def test_analyze_shares_the_rate_limit_with_a_bot_running_in_the_same_folder(
    rekognition: FakeRekognition, empty_folder: Path, tmp_path: Path
) -> None:
    (empty_folder / "data").mkdir()

    code, _, err = run("analyze", str(photo(tmp_path)), "--backend", "rekognition", "--features", "labels")

    assert code == 0, err
    assert (empty_folder / "data" / "rate.sqlite3").is_file()
    assert not (tmp_path / "cache").exists()


def test_without_a_usable_cache_folder_analyze_uses_a_private_temporary_one(
    monkeypatch: pytest.MonkeyPatch, empty_folder: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    folder = analyze_state_folder(settings_from())

    assert folder == tmp_path / "tmp" / f"photodetective-{os.getuid()}"
    assert folder.is_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert list(empty_folder.iterdir()) == []
