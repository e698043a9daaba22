"""The EXIF reader against exiftool on real files from ../shared/data (skipped when it is absent).

exif/exiftool-truth.json holds `exiftool -j -n` readings of 140 files from 32 makers. Every field
exiftool reported is compared with what `read_exif` returns; the disagreements are printed (run
with -s to see them) and attached to the assertion message, so a regression names its file.

The reader reads standard metadata only: EXIF (IFD0, Exif IFD, GPS IFD), a few XMP fallbacks
(make, model, lens, orientation, DateTimeOriginal) and the container's pixel size. For 35
fields exiftool's preferred value comes from elsewhere: a maker's private MakerNote, a
proprietary JPEG segment (Canon CIFF, Olympus PictureInfo, Casio QVCI) or a Composite it
computes; those were identified with `exiftool -G1 -a` and are listed in NOT_STANDARD_EXIF.
The required agreement applies to every other field; the overall agreement is printed too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from core.exif import read_exif, read_exif_bytes, register_heif_opener
from core.models import ExifData

pytestmark = pytest.mark.corpus

REQUIRED_AGREEMENT = 0.995

_CANON_ISO = "Composite:ISO computed from Canon MakerNote CameraISO/BaseISO/AutoISO (no EXIF ISO)"
_CASIO_ISO = "Casio MakerNote ISO (no EXIF ISO)"
_KODAK = "Kodak MakerNote value, preferred by exiftool over the ExifIFD one we return"
NOT_STANDARD_EXIF: dict[tuple[str, str], str] = {
    ("exif/exiftool/NikonD70.jpg", "ISO"): "Nikon MakerNote ISO (no EXIF ISO)",
    ("exif/exiftool/Pentax.jpg", "ISO"): "Pentax MakerNote raw ISO index 6 (= ISO 100, which ExifIFD says)",
    ("exif/exiftool/Casio.jpg", "ISO"): _CASIO_ISO,
    ("exif/exiftool/Casio2.jpg", "ISO"): _CASIO_ISO,
    ("exif/exif-py/jpg/tests/35-empty.jpg", "ISO"): _CASIO_ISO,
    ("exif/exif-py/jpg/tests/36-memory_error.jpg", "ISO"): _CASIO_ISO,
    ("exif/exif-py/jpg/exif-org/canon-ixus.jpg", "ISO"): _CANON_ISO,
    ("exif/exif-py/jpg/Canon_PowerShot_S40.jpg", "ISO"): _CANON_ISO,
    ("exif/exif-py/jpg/Canon_DIGITAL_IXUS_400.jpg", "ISO"): _CANON_ISO,
    ("exif/exif-py/jpg/tests/11-tests.jpg", "ISO"): _CANON_ISO,
    ("exif/exif-py/jpg/tests/22-canon_tags.jpg", "ISO"): _CANON_ISO,
    ("exif/exif-py/jpg/tests/28-hex_value.jpg", "ISO"): _CANON_ISO,
    ("exif/exiftool/Canon1DmkIII.jpg", "LensModel"): "Canon MakerNote LensModel",
    ("exif/exif-py/jpg/tests/42_IndexError.jpg", "LensModel"): "Olympus MakerNote (Equipment) LensModel",
    ("exif/exiftool/FLIR.jpg", "LensModel"): "FLIR MakerNote LensModel",
    ("exif/exiftool/Kodak.jpg", "ExposureTime"): _KODAK,
    ("exif/exiftool/Kodak.jpg", "FNumber"): _KODAK,
    ("exif/exiftool/Kodak.jpg", "ISO"): _KODAK,
    ("exif/exif-py/jpg/exif-org/kodak-dc240.jpg", "ExposureTime"): _KODAK,
    ("exif/exif-py/jpg/exif-org/kodak-dc240.jpg", "FNumber"): _KODAK,
    ("exif/exif-py/jpg/exif-org/kodak-dc240.jpg", "ISO"): _KODAK,
    ("exif/exif-py/jpg/Reconyx_HC500_Hyperfire.jpg", "DateTimeOriginal"): "Reconyx MakerNote date",
    ("exif/exiftool/PhotoMechanic.jpg", "DateTimeOriginal"): "Composite of IPTC DateCreated+TimeCreated",
    ("exif/exiftool/CasioQVCI.jpg", "DateTimeOriginal"): "Casio QVCI APP1 segment (no EXIF)",
    (
        "exif/exif-py/jpg/exif-org/olympus-d320l.jpg",
        "DateTimeOriginal",
    ): "Olympus APP12 PictureInfo (no EXIF)",
    ("exif/exif-py/jpg/exif-org/olympus-d320l.jpg", "ExposureTime"): "Olympus APP12 PictureInfo (no EXIF)",
    ("exif/exif-py/jpg/exif-org/olympus-d320l.jpg", "FNumber"): "Olympus APP12 PictureInfo (no EXIF)",
    ("exif/exif-py/jpg/exif-org/sony-powershota5.jpg", "Make"): "Canon CIFF APP0 segment (no EXIF)",
    ("exif/exif-py/jpg/exif-org/sony-powershota5.jpg", "Model"): "Canon CIFF APP0 segment (no EXIF)",
    (
        "exif/exif-py/jpg/exif-org/sony-powershota5.jpg",
        "DateTimeOriginal",
    ): "Canon CIFF APP0 segment (no EXIF)",
    ("exif/exif-py/jpg/exif-org/sony-powershota5.jpg", "FocalLength"): "Canon CIFF APP0 segment (no EXIF)",
    # exiftool's own test file packs a second camera's metadata in other segments and prefers it.
    ("exif/exiftool/ExifTool.jpg", "Make"): "CIFF APP0 'Canon' over IFD0 'FUJIFILM'",
    ("exif/exiftool/ExifTool.jpg", "Model"): "CIFF APP0 over IFD0",
    ("exif/exiftool/ExifTool.jpg", "DateTimeOriginal"): "CIFF APP0 over ExifIFD",
    ("exif/exiftool/ExifTool.jpg", "ExposureTime"): "Olympus APP12 PictureInfo (no EXIF ExposureTime)",
}
FLOAT_REL_TOLERANCE = 1e-3
GPS_DEGREE_TOLERANCE = 0.5e-6


def _truth(shared_data: Path) -> list[dict[str, object]]:
    path = shared_data / "exif" / "exiftool-truth.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    readings: list[dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return readings


def _read(path: Path) -> ExifData:
    register_heif_opener()
    with Image.open(path) as image:
        return read_exif(image)


def _same_text(truth: object, ours: object) -> bool:
    return isinstance(truth, str) and ours == truth.rstrip(" \x00")


def _same_float(truth: object, ours: object) -> bool:
    if not isinstance(truth, int | float) or not isinstance(ours, int | float):
        return False
    return math.isclose(ours, truth, rel_tol=FLOAT_REL_TOLERANCE, abs_tol=1e-9)


def _same_int(truth: object, ours: object) -> bool:
    if isinstance(truth, str):  # a multi-valued tag, e.g. ISO "0 200": ours must be one of them
        return isinstance(ours, int) and str(ours) in truth.split()
    return isinstance(truth, int) and ours == truth


def _same_degrees(truth: object, ours: float | None) -> bool:
    if not isinstance(truth, int | float):  # exiftool prints "" for an unreadable position
        return ours is None
    return ours is not None and abs(ours - truth) <= GPS_DEGREE_TOLERANCE


def _same_altitude(truth: object, ours: float | None) -> bool:
    if not isinstance(truth, int | float):  # "undef"
        return ours is None
    return ours is not None and math.isclose(ours, truth, rel_tol=FLOAT_REL_TOLERANCE, abs_tol=1e-6)


def _same_datetime(truth: object, exif: ExifData) -> bool:
    ours = exif.datetime_original
    # exiftool may append sub-seconds or an offset; the wall-clock part is what we compare.
    return isinstance(truth, str) and ours is not None and ours.strftime("%Y:%m:%d %H:%M:%S") == truth[:19]


COMPARISONS: dict[str, Callable[[object, ExifData], bool]] = {
    "Make": lambda t, e: _same_text(t, e.make),
    "Model": lambda t, e: _same_text(t, e.model),
    "LensModel": lambda t, e: _same_text(t, e.lens),
    "DateTimeOriginal": _same_datetime,
    "ExposureTime": lambda t, e: _same_float(t, e.exposure_time),
    "FNumber": lambda t, e: _same_float(t, e.f_number),
    "ISO": lambda t, e: _same_int(t, e.iso),
    "FocalLength": lambda t, e: _same_float(t, e.focal_length),
    "Orientation": lambda t, e: _same_int(t, e.orientation),
    "GPSLatitude": lambda t, e: _same_degrees(t, e.gps.latitude if e.gps else None),
    "GPSLongitude": lambda t, e: _same_degrees(t, e.gps.longitude if e.gps else None),
    "GPSAltitude": lambda t, e: _same_altitude(t, e.gps.altitude if e.gps else None),
    "ImageWidth": lambda t, e: _same_int(t, e.image_width),
    "ImageHeight": lambda t, e: _same_int(t, e.image_height),
}

OURS: dict[str, Callable[[ExifData], object]] = {
    "Make": lambda e: e.make,
    "Model": lambda e: e.model,
    "LensModel": lambda e: e.lens,
    "DateTimeOriginal": lambda e: e.datetime_original,
    "ExposureTime": lambda e: e.exposure_time,
    "FNumber": lambda e: e.f_number,
    "ISO": lambda e: e.iso,
    "FocalLength": lambda e: e.focal_length,
    "Orientation": lambda e: e.orientation,
    "GPSLatitude": lambda e: e.gps.latitude if e.gps else None,
    "GPSLongitude": lambda e: e.gps.longitude if e.gps else None,
    "GPSAltitude": lambda e: e.gps.altitude if e.gps else None,
    "ImageWidth": lambda e: e.image_width,
    "ImageHeight": lambda e: e.image_height,
}


def test_agrees_with_exiftool(shared_data: Path) -> None:
    readings = _truth(shared_data)
    compared = standard = 0
    disagreements: list[str] = []
    other_sources: list[str] = []
    for reading in readings:
        source = str(reading["SourceFile"])
        exif = _read(shared_data / source)
        for field, same in COMPARISONS.items():
            if field not in reading:
                continue
            compared += 1
            elsewhere = NOT_STANDARD_EXIF.get((source, field))
            standard += elsewhere is None
            if not same(reading[field], exif):
                line = f"{source} {field}: exiftool {reading[field]!r}, ours {OURS[field](exif)!r}"
                if elsewhere is None:
                    disagreements.append(line)
                else:
                    other_sources.append(f"{line} [{elsewhere}]")
    agreement = 1 - len(disagreements) / standard
    overall = 1 - (len(disagreements) + len(other_sources)) / compared
    report = (
        f"agreement {agreement:.2%} on {standard} fields exiftool read from standard metadata; "
        f"{overall:.2%} on all {compared} fields of {len(readings)} files"
    )
    print(report, *disagreements, "from other sources:", *other_sources, sep="\n  ")
    assert standard > 1000, "the truth file lost most of its fields"
    assert agreement >= REQUIRED_AGREEMENT, "\n".join([report, *disagreements])


def _all_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def test_never_raises_on_bad_files(shared_data: Path) -> None:
    """Every file in bad/ that Pillow can open at all gives an ExifData, whatever its EXIF holds."""
    files = _all_files(shared_data / "bad")
    assert files, "bad/ is empty"
    register_heif_opener()
    opened = 0
    for path in files:
        try:
            image = Image.open(path)
        except Exception:  # unreadable or a decompression bomb: refused before EXIF is read
            continue
        with image:
            opened += 1
            assert isinstance(read_exif(image), ExifData), path
    assert opened >= len(files) // 2


def test_read_exif_bytes_never_raises_on_any_file(shared_data: Path) -> None:
    """Including the files Pillow cannot even open (empty, text, bombs): they give ExifData()."""
    files = _all_files(shared_data / "bad") + _all_files(shared_data / "exif")
    results = {path: read_exif_bytes(path.read_bytes()) for path in files}
    assert results[shared_data / "bad" / "synthetic" / "zero_bytes.jpg"] == ExifData()
    assert all(isinstance(result, ExifData) for result in results.values())


def test_never_decodes_pixels(shared_data: Path) -> None:
    """Reading EXIF leaves every image undecoded, the 100-megapixel PNG bomb included."""
    paths = [shared_data / str(reading["SourceFile"]) for reading in _truth(shared_data)]
    paths.append(shared_data / "bad" / "synthetic" / "bomb_png_10000x10000_rgb.png")
    register_heif_opener()
    for path in paths:
        with Image.open(path) as image:
            pending = list(image.tile)
            read_exif(image)
            # Pillow keeps decoded pixels in `_im` and empties `tile` once it has decoded them.
            assert image._im is None, path
            assert image.tile == pending, path
