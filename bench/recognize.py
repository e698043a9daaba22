"""Time the local recognizer per feature on 1920 px photos.

    python bench/recognize.py [--rounds N] [PHOTOS...]


Photos default to ../shared/data/faces (scaled up so the long side is 1920 px, as the bot prepares a
large upload) or, on a fresh clone, generated pictures. Each round runs every feature alone and
then all together on every photo, interleaved, so background load on a shared machine spreads
over all of them; medians are printed. The labels feature is also split into its parts: the
ImageNet classifier (crop, resize and the numpy EfficientNet) and the BlazePose people detector.
Model loading is timed separately (first call).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.analysis_types import Feature
from core.recognizers.local import LocalRecognizer
from core.recognizers.local.classifier import classify
from core.recognizers.local.labels import detect_people
from core.recognizers.local.model_files import ModelStore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"
SIDE = 1920
FEATURES = (Feature.FACES, Feature.LABELS, Feature.TEXT, Feature.MODERATION)


def _at_1920(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    scale = SIDE / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)


def _generated() -> list[Image.Image]:
    image = Image.new("RGB", (SIDE, 1080), (200, 220, 235))
    draw = ImageDraw.Draw(image)
    draw.text((200, 300), "OPEN 9-17", fill="black", font_size=120)
    draw.ellipse((1200, 300, 1500, 700), fill=(225, 180, 150))
    return [image]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("photos", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    paths = args.photos or (
        sorted(p for p in SHARED.rglob("*") if p.suffix in {".jpg", ".png"}) if SHARED.is_dir() else []
    )
    images = [_at_1920(Image.open(p)) for p in paths] or _generated()
    recognizer = LocalRecognizer(concurrent_photos=1)
    every = frozenset(FEATURES)
    start = time.perf_counter()
    recognizer.analyze_image(images[0], every)
    print(f"first call (loads every model): {(time.perf_counter() - start) * 1000:.0f} ms")
    store = ModelStore(recognizer.models_dir)
    parts: dict[str, Callable[[Image.Image], object]] = {
        " classifier": lambda image: classify(image, store),
        " people": lambda image: detect_people(image, store),
    }
    for run in parts.values():
        run(images[0])  # load outside the timing
    times: dict[str, list[float]] = {str(f): [] for f in FEATURES}
    times.update({key: [] for key in parts})
    times["all"] = []
    for _ in range(args.rounds):
        for image in images:
            for key, features in [(str(f), frozenset({f})) for f in FEATURES] + [("all", every)]:
                start = time.perf_counter()
                recognizer.analyze_image(image, features)
                times[key].append((time.perf_counter() - start) * 1000)
            for key, run in parts.items():
                start = time.perf_counter()
                run(image)
                times[key].append((time.perf_counter() - start) * 1000)
    print(f"{len(images)} photos x {args.rounds} rounds, long side {SIDE} px, median ms:")
    order = [
        str(Feature.FACES),
        str(Feature.LABELS),
        *parts,
        str(Feature.TEXT),
        str(Feature.MODERATION),
        "all",
    ]
    for key in order:
        values = times[key]
        print(
            f"  {key:11s} {statistics.median(values):7.0f}"
            f"   (p90 {sorted(values)[int(len(values) * 0.9)]:.0f})"
        )
    recognizer.close()


if __name__ == "__main__":
    main()
