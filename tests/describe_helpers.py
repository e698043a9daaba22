"""Photos and doubles shared by the describe tests: a prepared photo from a JPEG with EXIF and GPS,
and a describer double that answers what a test scripts (for the stage's rules, not the wire)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence

import piexif
from PIL import Image

from core.analysis_types import Photo, PreparedPhoto
from core.describe.errors import DescribeFailed
from core.describe.types import Answer, Description
from core.limits import ImageLimits
from core.prepare import prepare_photo

SECRET_CAMERA = b"SecretCam-9000"


def jpeg_with_gps() -> bytes:
    """A 320x240 JPEG carrying a camera model and a GPS position, as a phone writes them."""
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Model: SECRET_CAMERA, piexif.ImageIFD.Make: b"Maker"},
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (2400, 100)),
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: ((2, 1), (17, 1), (4000, 100)),
            },
        }
    )
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 200)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def prepared_photo() -> PreparedPhoto:
    """The prepared photo the describer is given (the EXIF above read, the JPEG made anew)."""
    prepared = prepare_photo(Photo(jpeg_with_gps(), "gps.jpg"), ImageLimits())
    assert prepared.exif.gps is not None, "the test photo must carry GPS for the privacy checks"
    return prepared


def assert_no_metadata(jpeg: bytes) -> None:
    """The JPEG that left the server carries no EXIF block, no GPS and no camera name."""
    assert jpeg.startswith(b"\xff\xd8")
    assert b"Exif\x00\x00" not in jpeg
    assert SECRET_CAMERA not in jpeg
    with Image.open(io.BytesIO(jpeg)) as image:
        assert not image.getexif()


class ScriptedDescriber:
    """A `Describer` double: answers `caption`/`tags`, or raises `failure`, and records calls."""

    name = "double"
    model = "double-1"

    def __init__(
        self,
        caption: str = "A dog on gravel.",
        tags: Sequence[str] = (),
        *,
        hosted: bool = True,
        failure: DescribeFailed | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.caption = caption
        self.tags = tuple(tags)
        self.hosted = hosted
        self.failure = failure
        self.delay_s = delay_s
        self.described: list[tuple[PreparedPhoto, tuple[str, ...]]] = []
        self.asked: list[tuple[PreparedPhoto, str]] = []

    async def describe(self, photo: PreparedPhoto, labels: Sequence[str]) -> Description:
        self.described.append((photo, tuple(labels)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.failure is not None:
            raise self.failure
        return Description(self.caption, self.name, self.model, self.tags)

    async def ask(self, photo: PreparedPhoto, question: str) -> Answer:
        self.asked.append((photo, question))
        if self.failure is not None:
            raise self.failure
        return Answer(f"About {question}", self.name, self.model)
