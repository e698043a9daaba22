"""Benchmark photo preparation against naive Pillow and pyvips, each in fresh processes.

Run by hand: `python bench/prepare.py [--repeats N]` (pyvips and pyvips-binary from the `bench`
extra must be installed). For 12, 24 and 48 MP JPEGs with EXIF orientation 6 (the files in
../shared/data/large when present, else similar ones generated in a temporary folder), three ways
to go from the file's bytes to an upright JPEG with a long side of at most 1920 px:

- ours:   `core.prepare.prepare_photo` (DCT-domain downscaling, one cheap resize, rotate after);
- naive:  Pillow open, `ImageOps.exif_transpose`, LANCZOS resize to 1920, save at quality 85;
- pyvips: `thumbnail_buffer` (shrink-on-load, autorotate) and `jpegsave_buffer(Q=85, keep="none")`.

Every measurement runs in a new process that first imports everything any variant needs, then
times one call on bytes already in memory (as a worker receives them). Peak extra RSS is the
child's ru_maxrss minus that of a baseline child which only does the imports. Variants are
interleaved within each repeat, in a shuffled order, because the machine is shared and noisy;
the table shows medians.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LARGE = ROOT.parent / "shared" / "data" / "large"
SHARED_FILES = {
    12: "synthetic_12mp_4000x3000_orient6.jpg",
    24: "synthetic_24mp_6000x4000_orient6.jpg",
    48: "synthetic_48mp_8000x6000_orient6.jpg",
}
SIZES = {12: (4000, 3000), 24: (6000, 4000), 48: (8000, 6000)}
VARIANTS = ("ours", "naive", "pyvips")
MAX_SIDE = 1920
QUALITY = 85

TARGET_VS_PYVIPS = 1.0  # ours / pyvips wall time, at every size
TARGET_VS_NAIVE_24MP = 3.0  # naive / ours wall time at 24 MP
TARGET_RSS_48MP_MB = 60.0  # ours, peak extra RSS at 48 MP

CHILD = r"""
import io, json, resource, sys, time
sys.path.insert(0, sys.argv[3])
import pyvips
from PIL import Image, ImageOps
from core.analysis_types import Photo
from core.prepare import prepare_photo

variant, path = sys.argv[1], sys.argv[2]
MAX_SIDE, QUALITY = 1920, 85


def naive(data):
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    scale = MAX_SIDE / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    out = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(out, format="JPEG", quality=QUALITY)
    return out.getvalue()


def vips(data):
    thumbnail = pyvips.Image.thumbnail_buffer(data, MAX_SIDE, height=MAX_SIDE)
    return thumbnail.jpegsave_buffer(Q=QUALITY, keep="none")


def ours(data):
    return prepare_photo(Photo(data)).jpeg


elapsed = 0.0
if variant != "baseline":
    with open(path, "rb") as file:
        data = file.read()
    run = {"ours": ours, "naive": naive, "pyvips": vips}[variant]
    start = time.perf_counter()
    jpeg = run(data)
    elapsed = time.perf_counter() - start
    width, height = Image.open(io.BytesIO(jpeg)).size
    assert max(width, height) <= MAX_SIDE and height > width, (width, height)  # upright portrait
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"ms": elapsed * 1000, "rss_mb": peak_kb / 1024}))
"""


def run_child(variant: str, path: Path) -> dict[str, float]:
    """One fresh process, one measurement."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(path), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    measurement: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return measurement


def make_photo(path: Path, size: tuple[int, int]) -> None:
    """A JPEG like the shared ones: smooth shapes plus grain, quality 95, EXIF orientation 6."""
    from PIL import Image, ImageChops

    width, height = size
    small = Image.merge("RGB", [Image.effect_noise((width // 50, height // 50), 60).convert("L")] * 3)
    base = small.resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 12).convert("L")
    photo = ImageChops.add(base, Image.merge("RGB", [grain] * 3), scale=1.0, offset=-128)
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.save(path, format="JPEG", quality=95, exif=exif.tobytes())


def inputs(folder: Path) -> dict[int, Path]:
    if all((LARGE / name).is_file() for name in SHARED_FILES.values()):
        return {mp: LARGE / name for mp, name in SHARED_FILES.items()}
    print(f"{LARGE} not found: generating test photos in {folder}", file=sys.stderr)
    paths = {}
    for mp, size in SIZES.items():
        paths[mp] = folder / f"generated_{mp}mp.jpg"
        make_photo(paths[mp], size)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per variant and size")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        paths = inputs(Path(temporary))
        times: dict[tuple[int, str], list[float]] = {}
        rss: dict[tuple[int, str], list[float]] = {}
        baseline: list[float] = []
        rng = random.Random(20261128)
        for repeat in range(args.repeats):
            jobs = [(mp, variant) for mp in paths for variant in VARIANTS]
            jobs.append((0, "baseline"))
            rng.shuffle(jobs)
            for mp, variant in jobs:
                measured = run_child(variant, paths.get(mp, Path()))
                if variant == "baseline":
                    baseline.append(measured["rss_mb"])
                else:
                    times.setdefault((mp, variant), []).append(measured["ms"])
                    rss.setdefault((mp, variant), []).append(measured["rss_mb"])
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr)

    base_rss = statistics.median(baseline)
    ms = {key: statistics.median(values) for key, values in times.items()}
    extra = {key: statistics.median(values) - base_rss for key, values in rss.items()}
    print(f"medians of {args.repeats} fresh processes each; baseline child RSS {base_rss:.0f} MB")
    print()
    print(
        "| size | ours ms | pyvips ms | naive ms | ours/pyvips | naive/ours "
        "| extra RSS MB ours / pyvips / naive |"
    )
    print("|---|---|---|---|---|---|---|")
    failures = []
    for mp in paths:
        ours, vips, naive = ms[(mp, "ours")], ms[(mp, "pyvips")], ms[(mp, "naive")]
        print(
            f"| {mp} MP | {ours:.0f} | {vips:.0f} | {naive:.0f} | {ours / vips:.2f}x | {naive / ours:.1f}x "
            f"| {extra[(mp, 'ours')]:.0f} / {extra[(mp, 'pyvips')]:.0f} / {extra[(mp, 'naive')]:.0f} |"
        )
        if ours / vips > TARGET_VS_PYVIPS:
            failures.append(f"{mp} MP: ours/pyvips {ours / vips:.2f}x > {TARGET_VS_PYVIPS}x")
    if 24 in paths and ms[(24, "naive")] / ms[(24, "ours")] < TARGET_VS_NAIVE_24MP:
        failures.append(
            f"24 MP: naive/ours {ms[(24, 'naive')] / ms[(24, 'ours')]:.1f}x < {TARGET_VS_NAIVE_24MP}x"
        )
    if 48 in paths and extra[(48, "ours")] > TARGET_RSS_48MP_MB:
        failures.append(f"48 MP: extra RSS {extra[(48, 'ours')]:.0f} MB > {TARGET_RSS_48MP_MB:.0f} MB")
    print()
    print("targets met" if not failures else "targets missed: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
