"""The `photodetective analyze` command as a user runs it: files in, annotated JPEGs and a summary out."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import piexif
import pytest
from PIL import Image

from bot.cli import main
from tests.fakes.rekognition import PERSON_BOX, TEXT_LINE, FakeRekognition


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the progress bar is drawn."""

    def isatty(self) -> bool:
        return True


def write_photo(path: Path, size: tuple[int, int] = (640, 480), *, gps: bool = True) -> Path:
    """A JPEG with camera EXIF (and a GPS position) like a phone would write."""
    image = Image.new("RGB", size, (200, 120, 40))
    zeroth = {
        piexif.ImageIFD.Make: b"Canon",
        piexif.ImageIFD.Model: b"Canon EOS 80D",
        piexif.ImageIFD.Orientation: 1,
    }
    exif_ifd = {
        piexif.ExifIFD.DateTimeOriginal: b"2024:05:14 18:03:01",
        piexif.ExifIFD.ExposureTime: (1, 250),
        piexif.ExifIFD.FNumber: (18, 10),
        piexif.ExifIFD.ISOSpeedRatings: 100,
        piexif.ExifIFD.FocalLength: (50, 1),
    }
    gps_ifd = {}
    if gps:
        gps_ifd = {
            piexif.GPSIFD.GPSLatitudeRef: b"S",
            piexif.GPSIFD.GPSLatitude: ((33, 1), (51, 1), (3600, 100)),
            piexif.GPSIFD.GPSLongitudeRef: b"E",
            piexif.GPSIFD.GPSLongitude: ((151, 1), (12, 1), (0, 1)),
        }
    exif = piexif.dump({"0th": zeroth, "Exif": exif_ifd, "GPS": gps_ifd})
    image.save(path, "JPEG", quality=90, exif=exif)
    return path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer .env, no real AWS credentials: each test states what it configures."""
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # analyze's rate file, not ~/.cache


@pytest.fixture
def rekognition(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRekognition]:
    """The fake Rekognition endpoint, with credentials and settings pointing the CLI at it."""
    with FakeRekognition() as fake:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKECLI000000000")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-cli-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL", fake.url)
        monkeypatch.setenv("PHOTODETECTIVE_REKOGNITION_MAX_ATTEMPTS", "1")
        yield fake


def run(*argv: str, err: io.StringIO | None = None) -> tuple[int, str, str]:
    out = io.StringIO()
    err = err if err is not None else io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_features_none_reads_exif_and_writes_annotated_copy_without_exif(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "holiday.jpg")
    code, out, err = run("analyze", str(photo), "--features", "none", "--out", "results")
    assert code == 0, err
    annotated = tmp_path / "results" / "holiday.annotated.jpg"
    with Image.open(annotated) as image:
        assert image.size == (640, 480)
        assert len(image.getexif()) == 0
    assert "Canon EOS 80D" in out
    assert "1/250 s" in out
    assert "-33.86" in out  # southern latitude is negative
    assert "openstreetmap.org" in out


def test_json_document_has_the_documented_keys(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "a.jpg")
    code, out, _ = run("analyze", str(photo), "--features", "none", "--json", "--out", "o")
    assert code == 0
    (line,) = out.splitlines()
    doc = json.loads(line)
    for key in (
        "backend",
        "labels",
        "objects",
        "faces",
        "text",
        "moderation",
        "properties",
        "errors",
        "exif",
    ):
        assert key in doc
    assert doc["backend"] == "none"
    exif = doc["exif"]
    assert exif["make"] == "Canon"
    assert exif["model"] == "Canon EOS 80D"
    assert exif["exposure_time"] == pytest.approx(0.004)
    assert exif["f_number"] == pytest.approx(1.8)
    assert exif["iso"] == 100
    assert exif["focal_length"] == pytest.approx(50)
    assert exif["latitude"] == pytest.approx(-33.86, abs=1e-6)
    assert exif["longitude"] == pytest.approx(151.2, abs=1e-6)
    assert exif["datetime_original"] == "2024-05-14T18:03:01"
    assert "lens" not in exif  # unknown values are absent, not null
    assert doc["annotated"].endswith("a.annotated.jpg")


def test_hide_location_removes_gps_everywhere(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "a.jpg")
    _, text_out, _ = run("analyze", str(photo), "--features", "none", "--hide-location")
    _, json_out, _ = run("analyze", str(photo), "--features", "none", "--hide-location", "--json")
    assert "33.8" not in text_out
    assert "openstreetmap" not in text_out
    assert "latitude" not in json.loads(json_out)["exif"]


def test_carries_on_past_a_failed_photo_and_exits_non_zero(tmp_path: Path) -> None:
    good = write_photo(tmp_path / "good.jpg")
    html = tmp_path / "page.jpg"
    html.write_text("<!DOCTYPE html><html><body>login</body></html>")
    missing = tmp_path / "missing.jpg"
    code, out, err = run("analyze", str(html), str(missing), str(good), "--features", "none", "--json")
    assert code == 1
    docs = [json.loads(line) for line in out.splitlines()]
    assert [Path(d["file"]).name for d in docs] == ["page.jpg", "missing.jpg", "good.jpg"]
    assert docs[0]["error"]["reason"] == "unsupported_format"
    assert "HTML page" in docs[0]["error"]["message"]
    assert docs[1]["error"]["reason"] == "not_found"
    assert "error" not in docs[2]
    assert "HTML page" in err
    assert (Path("good.annotated.jpg")).exists()


@pytest.mark.parametrize(
    ("limit", "size", "message"),
    [
        (1_000_000, 2_500_000, "That file is 2.5 MB; the limit is 1 MB."),
        (25_000_000, 25_000_001, "That file is just over the 25 MB limit."),
    ],
)
def test_oversized_file_is_refused_from_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int, size: int, message: str
) -> None:
    monkeypatch.setenv("PHOTODETECTIVE_MAX_INPUT_BYTES", str(limit))
    big = tmp_path / "big.jpg"
    with big.open("wb") as sparse:  # refused from its size: the (sparse) content is never read
        sparse.truncate(size)
    code, _, err = run("analyze", str(big), "--features", "none")
    assert code == 1
    assert err.strip().endswith(message)


def test_bad_setting_stops_with_the_variable_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTODETECTIVE_MAX_SIDE", "banana")
    code, _, err = run("analyze", "x.jpg")
    assert code == 2
    assert "PHOTODETECTIVE_MAX_SIDE" in err


def test_bad_feature_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("analyze", "x.jpg", "--features", "labels,colours")
    assert exit_info.value.code == 2
    assert "colours" in capsys.readouterr().err


def test_progress_bar_for_several_photos_on_a_terminal(tmp_path: Path) -> None:
    photos = [str(write_photo(tmp_path / f"p{i}.jpg", gps=False)) for i in range(3)]
    terminal = Terminal()
    code, _, err = run("analyze", *photos, "--features", "none", err=terminal)
    assert code == 0
    assert "3/3" in err
    _, _, quiet = run("analyze", *photos, "--features", "none", "--no-progress", err=Terminal())
    assert "3/3" not in quiet


def test_same_names_do_not_overwrite_each_other(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_photo(tmp_path / "a" / "x.jpg")
    second = write_photo(tmp_path / "b" / "x.jpg")
    code, out, _ = run("analyze", str(first), str(second), "--features", "none", "--json")
    assert code == 0
    assert [Path(json.loads(line)["annotated"]).name for line in out.splitlines()] == [
        "x.annotated.jpg",
        "x-2.annotated.jpg",
    ]


def test_auto_without_credentials_or_models_says_how_to_configure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHOTODETECTIVE_MODELS_DIR", str(tmp_path / "no-models-here"))
    photo = write_photo(tmp_path / "a.jpg")
    code, out, err = run("analyze", str(photo))
    assert code == 0
    assert "install_models.py" in err
    assert "AWS" in err
    assert "Recognizer: none" in out


def test_auto_without_credentials_uses_the_local_recognizer(tmp_path: Path) -> None:
    from core.recognizers.local import local_models_installed

    if not local_models_installed():
        pytest.skip("local recognizer models are not installed (scripts/install_models.py)")
    photo = write_photo(tmp_path / "a.jpg", gps=False)
    code, out, err = run("analyze", str(photo), "--json")
    assert code == 0, err
    assert json.loads(out)["backend"] == "local"


def test_rekognition_results_in_json_with_boxes(tmp_path: Path, rekognition: FakeRekognition) -> None:
    photo = write_photo(tmp_path / "street.jpg", size=(1200, 900))
    code, out, err = run("analyze", str(photo), "--json", "--features", "labels,faces,text,moderation")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["backend"] == "rekognition"
    assert doc["errors"] == []
    person = next(o for o in doc["objects"] if o["name"] == "Person")
    assert person["box"] == [PERSON_BOX["Left"], PERSON_BOX["Top"], PERSON_BOX["Width"], PERSON_BOX["Height"]]
    assert 0 < person["confidence"] <= 1
    attributes = doc["faces"][0]["attributes"]
    assert attributes["age_low"] <= attributes["age_high"]
    assert [t["text"] for t in doc["text"]] == [TEXT_LINE]
    assert doc["moderation"]
    operations = sorted(r.operation for r in rekognition.requests)
    assert operations == ["DetectFaces", "DetectLabels", "DetectModerationLabels", "DetectText"]
    with Image.open(tmp_path / "street.annotated.jpg") as annotated:
        assert annotated.size == (1200, 900)
        # The person box was drawn: its left edge is no longer the flat photo colour.
        x0 = round(PERSON_BOX["Left"] * 1200)
        y_mid = round((PERSON_BOX["Top"] + PERSON_BOX["Height"] / 2) * 900)
        assert annotated.convert("RGB").getpixel((x0, y_mid)) != (200, 120, 40)


def test_rekognition_feature_failure_is_reported_and_others_still_shown(
    tmp_path: Path, rekognition: FakeRekognition
) -> None:
    rekognition.throttle(operation="DetectFaces")
    photo = write_photo(tmp_path / "a.jpg", size=(800, 600))
    code, out, _ = run("analyze", str(photo), "--features", "labels,faces")
    assert code == 0
    assert "Person" in out
    failed_line = next(line for line in out.splitlines() if "Failed:" in line)
    assert "face analysis" in failed_line
    assert "throttled" in failed_line
    assert "Faces:" not in out


def test_console_script_is_installed(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "a.jpg")
    script = Path(sys.executable).with_name("photodetective")
    result = subprocess.run(
        [str(script), "analyze", str(photo), "--features", "none", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["exif"]["model"] == "Canon EOS 80D"
