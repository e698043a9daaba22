"""Every file in ../shared/data/bad is handled, within bounded time and memory, as classified here.

Each file was inspected (Pillow, `file`, sizes, and the JPEG marker structure where in doubt) and
put in one of three groups. Valid files with broken metadata are processed, not refused.

- PROCESSED: valid images, many of them unusual (CMYK, MPO, 16-bit quantisation tables, all eight
  orientations, animated WebP, broken or hostile EXIF, a 400 KB ICC profile, junk before markers).
- TINY: valid images under 80 px (1x1 to 64x64, e.g. the "ICC after SOF" JPEG): refused as
  TooSmall with the default limits, and processed like the others when the minimum is lowered.
- REFUSED: broken or hostile files, each refused with a clear PhotoRejected subclass.

Each file runs in its own child process with a 1.5 GB address-space limit (RLIMIT_AS) and a time
limit, so a runaway decode fails the test instead of the machine. Children are forked from a
clean, single-threaded forkserver that has imported the code already, which keeps this fast.
"""

from __future__ import annotations

import multiprocessing
import resource
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.corpus

MEMORY_LIMIT_BYTES = 1_500_000_000
TIME_LIMIT_SECONDS = 20.0

# name -> (size of the prepared image, EXIF orientation applied)
PROCESSED: dict[str, tuple[tuple[int, int], int]] = {
    "pillow/app13-multiple.jpg": ((256, 160), 1),  # several Photoshop APP13 segments
    "pillow/avif/exif.avif": ((512, 512), 1),
    "pillow/avif/hopper.heif": ((128, 128), 1),  # an HEVC HEIF among Pillow's AVIF samples
    "pillow/avif/xmp_tags_orientation.avif": ((326, 268), 3),
    "pillow/broken_exif_dpi.jpg": ((100, 100), 1),
    "pillow/decompression_bomb_extents.gif": ((100, 100), 1),  # only frame 2 grows the canvas
    "pillow/exif-dpi-zerodivision.jpg": ((200, 200), 1),
    "pillow/exif-ifd-offset.jpg": ((200, 200), 1),
    "pillow/exif.png": ((512, 512), 1),
    "pillow/exif_gps_typeerror.jpg": ((800, 531), 1),
    "pillow/exif_imagemagick_orientation.png": ((512, 512), 3),  # EXIF in an ImageMagick text chunk
    "pillow/exif_typeerror.jpg": ((800, 531), 1),
    "pillow/flower.jpg": ((480, 360), 1),
    "pillow/flower.webp": ((480, 360), 1),
    "pillow/flower2.jpg": ((300, 225), 1),
    "pillow/frozenpond.mpo": ((640, 480), 1),  # stereo MPO: the first picture
    "pillow/hopper_16bit_qtables.jpg": ((128, 128), 1),  # extended sequential, 16-bit tables
    "pillow/hopper_bad_exif.jpg": ((500, 500), 1),  # EXIF shorter than it claims
    "pillow/hopper_gray.jpg": ((128, 128), 1),
    **{
        f"pillow/hopper_orientation_{n}.{ext}": ((128, 128), n)
        for n in range(2, 9)
        for ext in ("jpg", "webp")
    },
    "pillow/hopper_webp.png": ((128, 128), 1),
    "pillow/icc_profile_big.jpg": ((425, 250), 1),  # a 400 KB ICC profile over many APP2 segments
    "pillow/invalid-exif-without-x-resolution.jpg": ((300, 200), 1),
    "pillow/invalid-exif.jpg": ((200, 200), 1),  # APP1 "Exif" holding no TIFF structure
    "pillow/iss634.webp": ((245, 245), 1),  # animated, 42 frames: the first
    "pillow/jpeg_ff00_header.jpg": ((300, 225), 1),
    "pillow/junk_jpeg_header.jpg": ((1024, 768), 1),  # junk bytes between markers
    "pillow/photoshop-200dpi-broken.jpg": ((200, 200), 1),
    "pillow/pil_sample_cmyk.jpg": ((100, 100), 1),  # Adobe (inverted) CMYK
    "pillow/sugarshack_bad_mpo_header.jpg": ((640, 480), 1),  # broken MPF: read as a plain JPEG
    "pillow/sugarshack_no_data.mpo": ((640, 480), 1),  # second picture missing: first is fine
    "pillow/transparent.webp": ((200, 150), 1),  # alpha, shown over white
    "pillow/truncated_app14.jpg": ((100, 100), 1),  # the Adobe APP14 segment is cut, pixels are whole
    "pillow/truncated_exif_dpi.jpg": ((480, 640), 1),
    "pillow/xmp_test.jpg": ((1920, 1029), 1),  # 2000 px: the one file that is downsized
    "synthetic/exif_ifd_count_65535.jpg": ((600, 400), 1),
    "synthetic/exif_orientation_0_invalid.jpg": ((600, 400), 1),  # invalid: no rotation
    "synthetic/exif_orientation_9_invalid.jpg": ((600, 400), 1),
    "synthetic/exif_zero_denominators.jpg": ((600, 400), 1),
}

# Valid but smaller than 80 px on a side: name -> (prepared size with min_side=1, orientation).
TINY: dict[str, tuple[tuple[int, int], int]] = {
    "pillow/1_trns.png": ((64, 64), 1),  # 1-bit with a transparent colour
    "pillow/empty_gps_ifd.jpg": ((10, 10), 6),
    "pillow/exif_gps.jpg": ((8, 8), 1),
    "pillow/icc-after-SOF.jpg": ((10, 10), 1),  # a 7-byte "ICC profile" after the frame header
    "pillow/multiple_exif.jpg": ((1, 1), 1),
    "pillow/orientation_rectangle.jpg": ((1, 2), 8),
    "pillow/xmp_tags_orientation_exiftool.png": ((10, 10), 3),  # orientation only in XMP
}

# name -> (error class, reason, a phrase of the message)
REFUSED: dict[str, tuple[str, str, str]] = {
    # PNG signature followed by garbage.
    "pillow/broken.png": ("CorruptImage", "corrupt", "PNG file is damaged"),
    # The zlib stream breaks: the bottom rows never decode.
    "pillow/broken_data_stream.png": ("CorruptImage", "corrupt", "PNG file is damaged"),
    # A 32x32 GIF whose first frame claims 65535x66601 pixels.
    "pillow/decompression_bomb.gif": (
        "TooLarge",
        "too_many_pixels",
        "This image has 4364.7 megapixels; the limit is 100 megapixels.",
    ),
    "pillow/decompression_bomb.ico": ("UnsupportedFormat", "unsupported_format", "a Windows icon"),
    # Ends in the header of one more IDAT chunk: the file is cut.
    "pillow/truncated_end_chunk.png": ("CorruptImage", "corrupt", "PNG file is damaged"),
    "pillow/truncated_image.png": ("CorruptImage", "corrupt", "PNG file is damaged"),
    "pillow/truncated_jpeg.jpg": ("CorruptImage", "corrupt", "JPEG file is damaged"),
    # Pillow's copy of a Pixel 6 Ultra HDR photo keeps only the headers: the file ends right after
    # the start-of-scan marker (0 bytes of image data), so there is no picture to analyse.
    "pillow/ultrahdr.jpg": ("CorruptImage", "corrupt", "JPEG file is damaged"),
    "skimage/truncated.jpg": ("CorruptImage", "corrupt", "JPEG file is damaged"),
    # 100 megapixels in 291 KB: within max_pixels, over the cap for formats decoded in full.
    "synthetic/bomb_png_10000x10000_rgb.png": (
        "TooLarge",
        "too_many_pixels_to_decode",
        "decompression bomb",
    ),
    "synthetic/bomb_png_30000x30000_1bit.png": (
        "TooLarge",
        "too_many_pixels",
        "This image is 30000×30000 pixels; the limit is 100 megapixels.",
    ),
    "synthetic/jpeg_sof_claims_65000x65000.jpg": (
        "TooLarge",
        "too_many_pixels",
        "This image is 65000×65000 pixels; the limit is 100 megapixels.",
    ),
    "synthetic/phone12mp_truncated_50pct.jpg": ("CorruptImage", "corrupt", "JPEG file is damaged"),
    "synthetic/phone12mp_truncated_5pct.jpg": ("CorruptImage", "corrupt", "JPEG file is damaged"),
    "synthetic/text_named_jpg.jpg": ("UnsupportedFormat", "unsupported_format", "an HTML page"),
    "synthetic/zero_bytes.jpg": ("UnsupportedFormat", "unsupported_format", "an empty file"),
}


def prepare_in_child(path: str, min_side: int, connection: Connection) -> None:
    """Runs in the child: limit memory, prepare the file, report what happened."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    from core.analysis_types import Photo
    from core.errors import PhotoRejected  # imported after the limit applies
    from core.limits import ImageLimits
    from core.prepare import prepare_photo

    outcome: dict[str, Any]
    try:
        prepared = prepare_photo(Photo(Path(path).read_bytes()), ImageLimits(min_side=min_side))
        outcome = {
            "kind": "prepared",
            "size": prepared.image.size,
            "mode": prepared.image.mode,
            "orientation": prepared.orientation,
            "jpeg_bytes": len(prepared.jpeg),
        }
    except PhotoRejected as error:
        outcome = {
            "kind": "rejected",
            "class": type(error).__name__,
            "reason": error.reason,
            "message": str(error),
        }
    except BaseException as error:  # anything else is the bug this test is here to catch
        outcome = {"kind": "crash", "error": repr(error), "traceback": traceback.format_exc()}
    connection.send(outcome)
    connection.close()


@pytest.fixture(scope="module")
def bad_files(shared_data: Path) -> Path:
    folder = shared_data / "bad"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return folder


@pytest.fixture(scope="module")
def forkserver() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["core.prepare", __name__])
    return context


def run_bounded(
    context: multiprocessing.context.ForkServerContext, path: Path, min_side: int = 80
) -> dict[str, Any]:
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=prepare_in_child, args=(str(path), min_side, sender))
    child.start()
    sender.close()
    try:
        if not receiver.poll(TIME_LIMIT_SECONDS):
            pytest.fail(f"{path.name}: no answer within {TIME_LIMIT_SECONDS} s")
        outcome: dict[str, Any] = receiver.recv()
    except EOFError:
        child.join(5)
        pytest.fail(f"{path.name}: the child died (exit code {child.exitcode}), e.g. out of memory")
    finally:
        if child.is_alive():
            child.join(5)
        if child.is_alive():
            child.kill()
            child.join()
        receiver.close()
    assert outcome["kind"] != "crash", f"{path.name} raised {outcome['error']}\n{outcome['traceback']}"
    return outcome


def test_every_file_is_classified(bad_files: Path) -> None:
    present = {str(path.relative_to(bad_files)) for path in bad_files.rglob("*") if path.is_file()}
    classified = set(PROCESSED) | set(TINY) | set(REFUSED)
    assert present - classified == set(), "new files: inspect and classify them"
    assert classified - present == set(), "classified files that are gone"


@pytest.mark.parametrize("name", sorted(PROCESSED))
def test_valid_unusual_files_are_processed(
    bad_files: Path, forkserver: multiprocessing.context.ForkServerContext, name: str
) -> None:
    outcome = run_bounded(forkserver, bad_files / name)

    size, orientation = PROCESSED[name]
    assert outcome["kind"] == "prepared", outcome
    assert tuple(outcome["size"]) == size
    assert outcome["orientation"] == orientation
    assert outcome["mode"] == "RGB"
    assert 0 < outcome["jpeg_bytes"] <= 5_000_000


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_valid_files_are_too_small_yet_decodable(
    bad_files: Path, forkserver: multiprocessing.context.ForkServerContext, name: str
) -> None:
    refused = run_bounded(forkserver, bad_files / name)
    assert (refused["kind"], refused.get("class"), refused.get("reason")) == (
        "rejected",
        "TooSmall",
        "too_small",
    )

    processed = run_bounded(forkserver, bad_files / name, min_side=1)
    size, orientation = TINY[name]
    assert processed["kind"] == "prepared", processed
    assert tuple(processed["size"]) == size
    assert processed["orientation"] == orientation


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_broken_files_are_refused_clearly(
    bad_files: Path, forkserver: multiprocessing.context.ForkServerContext, name: str
) -> None:
    outcome = run_bounded(forkserver, bad_files / name)

    error_class, reason, phrase = REFUSED[name]
    assert outcome["kind"] == "rejected", outcome
    assert (outcome["class"], outcome["reason"]) == (error_class, reason)
    assert phrase in outcome["message"]
