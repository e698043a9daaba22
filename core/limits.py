"""How much input the photo preparation accepts, and what it produces.

The application fills `ImageLimits` from its settings; the defaults are what a chat bot in front of
Amazon Rekognition needs. Every limit is checked on the file's header, before any pixel is decoded,
so a hostile upload costs at most the bytes it already took to receive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Rekognition takes at most 5 MB of image bytes; a decimal 5 MB stays under it whichever way
# "MB" is read (5,000,000 < 5 MiB).
REKOGNITION_MAX_BYTES = 5_000_000
# The smallest `max_jpeg_bytes` accepted. Even pure noise at 1920x1920 px is about 3 MB at
# quality 85 and 1.5 MB at 45, so with a limit in the megabytes the image is never shrunk; a tiny
# limit would force it down to a size too small to analyse.
MIN_JPEG_BYTES = 64_000


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Limits on the uploaded photo and the shape of the prepared image.

    - `max_bytes`: size of the uploaded file.
    - `max_pixels`: width x height as the header states, for every format.
    - `max_full_decode_pixels`: a lower cap for the formats that cannot be downscaled while
      decoding (everything but JPEG: PNG, GIF, TIFF, BMP, WebP, HEIC, AVIF). They are decoded at
      full size, about 4 bytes per pixel, and compress so well that a few hundred KB can claim
      100 megapixels (a "decompression bomb": 800 MB of memory and seconds of CPU for 291 KB of
      PNG). 50 megapixels bounds such a decode to about 200 MB and still admits the largest
      phone photos saved in those formats (48 MP HEIC). JPEGs are scaled down by the decoder
      itself (1/2, 1/4, 1/8 in the DCT domain), so a 100 MP JPEG costs only a few MB.
    - `min_side`: the shortest side a photo may have (Rekognition refuses images under 80 px).
    - `max_side`: the long side of the prepared image. Larger photos come out with a long side
      between 0.75 x and 1.0 x `max_side` (see `min_long_side`); smaller ones are not upscaled.
    - `jpeg_quality`: quality of the JPEG sent to the recognizer.
    - `max_jpeg_bytes`: that JPEG is always at most this big (quality, then size, are lowered).
    """

    max_bytes: int = 25_000_000
    max_pixels: int = 100_000_000
    max_full_decode_pixels: int = 50_000_000
    min_side: int = 80
    max_side: int = 1920
    jpeg_quality: int = 85
    max_jpeg_bytes: int = REKOGNITION_MAX_BYTES

    def __post_init__(self) -> None:
        """Refuse settings the preparation cannot honour, at startup rather than on a user's photo."""
        for name in ("max_bytes", "max_pixels", "max_full_decode_pixels", "min_side", "max_side"):
            if getattr(self, name) < 1:
                raise ValueError(f"ImageLimits.{name} must be positive, not {getattr(self, name)}")
        if self.max_side < self.min_side:
            raise ValueError(
                f"ImageLimits.max_side ({self.max_side}) must be at least min_side ({self.min_side})"
            )
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"ImageLimits.jpeg_quality must be 1..95, not {self.jpeg_quality}")
        if self.max_jpeg_bytes < MIN_JPEG_BYTES:
            raise ValueError(
                f"ImageLimits.max_jpeg_bytes must be at least {MIN_JPEG_BYTES}, not {self.max_jpeg_bytes}"
            )

    @property
    def min_long_side(self) -> int:
        """The shortest long side a downscaled photo may get: 0.75 x `max_side`.

        The slack lets the JPEG decoder do almost all of the downscaling (it only halves), leaving
        at most one cheap resize.
        """
        return max(self.min_side, math.ceil(0.75 * self.max_side))
