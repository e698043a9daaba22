"""The embedded recognizer on generated images: capabilities, model checks, text, no network, the CLI path."""

from __future__ import annotations

import io
import json
import socket
import typing
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from core.analysis_types import Feature, Photo, PreparedPhoto
from core.errors import RecognizerUnavailable
from core.prepare import prepare_photo
from core.recognizers.base import Recognizer
from core.recognizers.local import LocalRecognizer, local_models_installed, ssd
from core.recognizers.local.model_files import ALL_MODELS, FACE_DETECTOR_SHORT, default_models_dir


@pytest.fixture(scope="module")
def models_dir() -> Path:
    """The installed models; skipped (with the fix) when the install step has not been run."""
    directory = default_models_dir()
    if not local_models_installed(directory):
        pytest.skip(f"local models are not installed in {directory}: run python scripts/install_models.py")
    return directory


@pytest.fixture(scope="module")
def recognizer(models_dir: Path) -> typing.Iterator[LocalRecognizer]:
    local = LocalRecognizer(models_dir=models_dir)
    yield local
    local.close()


def _prepared(image: Image.Image) -> PreparedPhoto:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return prepare_photo(Photo(buffer.getvalue(), "generated.png"))


def _sign() -> Image.Image:
    """A street-sign-like picture with two lines of large dark text on a light background."""
    image = Image.new("RGB", (1600, 900), (235, 235, 225))
    draw = ImageDraw.Draw(image)
    draw.text((150, 200), "OPEN DAILY", fill=(20, 20, 20), font_size=110)
    draw.text((150, 520), "Bakery 1984", fill=(30, 30, 120), font_size=110)
    return image


def test_declares_what_it_can_do() -> None:
    local = LocalRecognizer(models_dir=Path("/nonexistent"))
    try:
        assert isinstance(local, Recognizer)
        assert local.name == "local"
        assert local.capabilities == {Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION}
        assert Feature.PROPERTIES not in local.capabilities
        assert Feature.CELEBRITIES not in local.capabilities
        assert any("glasses" in line for line in local.limitations)
    finally:
        local.close()


def test_moderation_can_be_turned_off() -> None:
    local = LocalRecognizer(models_dir=Path("/nonexistent"), moderation=False)
    try:
        assert Feature.MODERATION not in local.capabilities
    finally:
        local.close()


async def test_missing_models_say_how_to_install(tmp_path: Path) -> None:
    assert not local_models_installed(tmp_path)
    local = LocalRecognizer(models_dir=tmp_path)
    try:
        with pytest.raises(RecognizerUnavailable, match="install"):
            await local.analyze(_prepared(Image.new("RGB", (200, 200), "grey")), frozenset({Feature.FACES}))
    finally:
        local.close()


async def test_a_damaged_model_is_refused_not_run(tmp_path: Path) -> None:
    # Same name and size as the real file, different bytes: only the hash can tell.
    (tmp_path / FACE_DETECTOR_SHORT.name).write_bytes(b"\0" * FACE_DETECTOR_SHORT.size)
    local = LocalRecognizer(models_dir=tmp_path)
    try:
        with pytest.raises(RecognizerUnavailable, match="sha256"):
            await local.analyze(_prepared(Image.new("RGB", (200, 200), "grey")), frozenset({Feature.FACES}))
    finally:
        local.close()


def test_anchor_layouts_match_the_models_outputs() -> None:
    # The number of anchors each MediaPipe graph builds equals the rows each model emits.
    assert len(ssd.anchor_centres(128, (8, 16, 16, 16), 2)) == 896  # BlazeFace short range
    assert len(ssd.anchor_centres(192, (4,), 1)) == 2304  # BlazeFace full range
    assert len(ssd.anchor_centres(224, (8, 16, 32, 32, 32), 2)) == 2254  # BlazePose detector
    centres = ssd.anchor_centres(128, (8,), 1)
    assert centres[0].tolist() == pytest.approx([0.5 / 16, 0.5 / 16])
    assert centres[1].tolist() == pytest.approx([1.5 / 16, 0.5 / 16])


def test_letterbox_maps_back_to_the_photo() -> None:
    frame = ssd.letterbox(Image.new("RGB", (400, 200), "white"), 100)
    import numpy as np

    x, y = frame.to_photo(np.array([0.0, 1.0]), np.array([0.25, 0.75]))
    assert x.tolist() == pytest.approx([0.0, 1.0])
    assert y.tolist() == pytest.approx([0.0, 1.0])
    assert frame.pixels.min() == pytest.approx(-1.0)
    assert frame.pixels.max() == pytest.approx(1.0)


async def test_reads_text_lines_with_boxes(recognizer: LocalRecognizer) -> None:
    analysis = await recognizer.analyze(_prepared(_sign()), frozenset({Feature.TEXT, Feature.LABELS}))
    assert not analysis.errors
    texts = [line.text for line in analysis.text]
    assert texts == ["OPEN DAILY", "Bakery 1984"]
    first = analysis.text[0]
    assert 0.05 < first.box.left < 0.15
    assert 0.15 < first.box.top < 0.3
    assert all(0.5 <= line.confidence <= 1 for line in analysis.text)
    assert [label.name for label in analysis.labels] == ["Text"]  # and no person on a sign


async def test_an_empty_scene_has_no_faces_people_or_warnings(recognizer: LocalRecognizer) -> None:
    image = Image.linear_gradient("L").resize((800, 600)).convert("RGB")
    analysis = await recognizer.analyze(_prepared(image), recognizer.capabilities)
    assert analysis.features == recognizer.capabilities
    assert not analysis.errors
    assert analysis.faces == ()
    assert analysis.objects == ()
    assert analysis.moderation == ()
    assert analysis.labels == ()


async def test_runs_with_the_network_blocked(
    recognizer: LocalRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is downloaded at run time: every socket use fails, and the analysis still works."""

    def refuse(*args: object, **kwargs: object) -> typing.NoReturn:
        raise AssertionError("the local recognizer tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    fresh = LocalRecognizer(models_dir=recognizer.models.directory)  # loads every model under the block
    try:
        analysis = await fresh.analyze(_prepared(_sign()), fresh.capabilities)
    finally:
        fresh.close()
    assert not analysis.errors
    assert [line.text for line in analysis.text] == ["OPEN DAILY", "Bakery 1984"]


def test_every_model_is_pinned_with_hash_size_and_licence() -> None:
    names = [model.name for model in ALL_MODELS]
    assert len(set(names)) == len(names)
    for model in ALL_MODELS:
        assert len(model.sha256) == 64
        assert model.size > 0
        assert model.licence
        assert model.source.version
        assert len(model.source.sha256) == 64
        assert "AGPL" not in model.licence
        assert "GPL" not in model.licence


def _cli_knows_local() -> bool:
    from bot.settings import BackendChoice

    return "local" in typing.get_args(BackendChoice)


@pytest.mark.skipif(not _cli_knows_local(), reason="bot wiring for --backend local is not integrated yet")
def test_cli_backend_local(models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main

    monkeypatch.chdir(tmp_path)  # no stray .env
    photo = tmp_path / "sign.png"
    _sign().save(photo)
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "analyze",
            str(photo),
            "--backend",
            "local",
            "--features",
            "text,labels",
            "--json",
            "--out",
            str(tmp_path),
        ],
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    document = json.loads(out.getvalue().splitlines()[0])
    assert "OPEN DAILY" in json.dumps(document)
    assert (tmp_path / "sign.annotated.jpg").is_file()
