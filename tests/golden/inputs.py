"""The inputs the golden outputs were recorded on, rebuilt the same way by the recorder and the tests.

Three sets: images generated here from fixed seeds (always available, so every check runs on a
bare checkout), the second evaluation set (`scripts/fetch_eval_photos.py`, pinned PyPI archives)
and `../shared/data/faces` (read in place, never copied). Photos are prepared exactly as the bot
prepares an upload (`prepare_photo`), and each is identified by a key and the sha256 of its file,
so a golden output is only compared when the photo is byte for byte the one it was recorded on.
Only outputs, keys and hashes are stored in `tests/golden`; no photo is.

This module is also loaded by file path from `scripts/record_goldens.py`, which runs against an
older checkout of the engine: it imports nothing from this repository at module level.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

GOLDEN_DIR = Path(__file__).resolve().parent
REPO = GOLDEN_DIR.parents[1]
EVAL_VARIABLE = "PHOTODETECTIVE_EVAL_PHOTOS"
EVAL_DEFAULT = Path.home() / ".cache" / "photodetective" / "eval-photos"
SHARED_FACES = REPO.parent / "shared" / "data" / "faces"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png"}


def generated_images() -> dict[str, Image.Image]:
    """Photos made of numbers: noise, a gradient with a disc, coloured blocks (fixed seeds, any numpy)."""
    rng = np.random.default_rng(22)
    noise = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    rows, cols = np.mgrid[0:480, 0:640]
    gradient = np.stack([cols * 255 // 639, rows * 255 // 479, (cols + rows) * 255 // 1118], axis=2)
    disc = (rows - 240) ** 2 + (cols - 320) ** 2 < 120**2
    gradient[disc] = (230, 40, 40)
    blocks = np.kron(rng.integers(0, 256, size=(8, 8, 3)), np.ones((64, 64, 1))).astype(np.uint8)
    return {
        "generated:noise": Image.fromarray(noise, "RGB"),
        "generated:gradient": Image.fromarray(gradient.astype(np.uint8), "RGB"),
        "generated:blocks": Image.fromarray(blocks, "RGB"),
    }


def generated_faces() -> dict[str, np.ndarray]:
    """Two 112 px inputs for the age and gender network that need no photo (values 0..255)."""
    rng = np.random.default_rng(112)
    rows, cols = np.mgrid[0:112, 0:112]
    shade = np.stack([rows * 2, cols * 2, 255 - rows - cols], axis=2).clip(0, 255)
    return {
        "generated:face-noise": rng.integers(0, 256, size=(112, 112, 3)).astype(np.float32),
        "generated:face-shade": shade.astype(np.float32),
    }


def eval_dir() -> Path:
    configured = os.environ.get(EVAL_VARIABLE)
    return Path(configured) if configured else EVAL_DEFAULT


def photo_paths() -> Iterator[tuple[str, Path]]:
    """(key, path) of every photo present in the evaluation set and the shared faces folder."""
    for prefix, folder in (("eval", eval_dir()), ("shared", SHARED_FACES)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in PHOTO_SUFFIXES and path.is_file():
                yield f"{prefix}:{path.relative_to(folder).as_posix()}", path


def path_of(key: str) -> Path:
    """Where a photo key points (it may not exist)."""
    prefix, _, relative = key.partition(":")
    return (eval_dir() if prefix == "eval" else SHARED_FACES) / relative


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sha256_array(array: np.ndarray) -> str:
    """The hash of a model input's values (as uint8 when they are whole numbers 0..255, else float32)."""
    data = np.ascontiguousarray(array)
    if np.array_equal(data, np.round(data)) and data.min() >= 0 and data.max() <= 255:
        return hashlib.sha256(data.astype(np.uint8).tobytes()).hexdigest()
    return hashlib.sha256(data.astype(np.float32).tobytes()).hexdigest()


def prepared(path: Path) -> Image.Image:
    """The photo as the bot would hand it to a recognizer (oriented, scaled, RGB)."""
    from core.analysis_types import Photo
    from core.prepare import prepare_photo

    return prepare_photo(Photo(path.read_bytes(), path.name)).image
