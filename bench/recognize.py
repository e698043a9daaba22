"""Time the local recognizer, every feature on, 1920 px photos, against a previous engine in the same run.

    python bench/recognize.py [--rounds N] [--baseline DIR] [PHOTOS...]

Photos default to ../shared/data/faces (scaled so the long side is 1920 px, as the bot prepares a
large upload) or, on a fresh clone, a generated picture. Each engine runs in its own process (one
photo at a time, one BLAS thread, as `bot.launch` sets up a worker): this checkout's, and with
`--baseline` the engine of another checkout, e.g. the commit before a change:

    git worktree add /tmp/engine-base <commit> && python bench/recognize.py --baseline /tmp/engine-base

The two processes take turns photo by photo (and swap who goes first each round), so the shared
machine's background load falls on both alike; the ratio of the medians is the comparable number.
The CPU time of each photo (every thread of the process) is printed too: on a busy machine it
moves less than the wall time, and it is what bounds a worker's throughput.
For this checkout's engine the table also gives the time in each model (every
`InferenceModel.predict`, from the registry); the rest is the pipeline's own resizing, decoding
and merging. Model loading is timed separately (the first photo).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "faces"
SIDE = 1920

# Runs inside each engine's process: it imports that checkout's `core`, answers one line per photo.
_CHILD = r"""
import json, sys, time
from pathlib import Path
root, paths, side = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, root)
from PIL import Image, ImageDraw
from core.analysis_types import Feature
from core.recognizers.local import LocalRecognizer

def at_1920(image):
    image = image.convert("RGB")
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)

def generated():
    image = Image.new("RGB", (side, 1080), (200, 220, 235))
    draw = ImageDraw.Draw(image)
    draw.text((200, 300), "OPEN 9-17", fill="black", font_size=120)
    draw.ellipse((1200, 300, 1500, 700), fill=(225, 180, 150))
    return image

images = [at_1920(Image.open(p)) for p in paths] or [generated()]
recognizer = LocalRecognizer(concurrent_photos=1)
every = frozenset(Feature)
spent = {}

def timed(name, predict):
    def run(inputs):
        start = time.perf_counter()
        try:
            return predict(inputs)
        finally:
            spent[name] = spent.get(name, 0.0) + (time.perf_counter() - start) * 1000
    return run

start = time.perf_counter()
recognizer.analyze_image(images[0], every)
load_ms = (time.perf_counter() - start) * 1000
registry = getattr(recognizer, "models", None)
for model in registry.models() if registry is not None else ():
    model.predict = timed(model.name, model.predict)
print(json.dumps({"photos": len(images), "first_ms": load_ms}), flush=True)
for line in sys.stdin:
    spent.clear()
    start, cpu = time.perf_counter(), time.process_time()
    recognizer.analyze_image(images[int(line)], every)
    wall, cpu = (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000
    print(json.dumps({"ms": wall, "cpu_ms": cpu, "models": spent}), flush=True)
"""


class Engine:
    """One engine's process: send a photo's index, read back its time and the models' times."""

    def __init__(self, label: str, root: Path, photos: list[Path]) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.label = label
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(root), json.dumps([str(p) for p in photos]), str(SIDE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=root,
            env=env,
        )
        ready = self._read()
        self.photos = int(ready["photos"])
        self.first_ms = float(ready["first_ms"])
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.models: dict[str, list[float]] = {}

    def _read(self) -> dict[str, Any]:
        stdout: IO[str] | None = self._process.stdout
        line = stdout.readline() if stdout is not None else ""
        if not line:
            raise RuntimeError(f"the {self.label} engine stopped (run it alone to see why)")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def analyse(self, index: int) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(f"{index}\n")
        self._process.stdin.flush()
        answer = self._read()
        self.times.append(float(answer["ms"]))
        self.cpu.append(float(answer["cpu_ms"]))
        for name, ms in answer["models"].items():
            self.models.setdefault(name, []).append(float(ms))

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=60)


def p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)]


def report(engines: list[Engine]) -> None:
    current = engines[0]
    print(f"{current.photos} photos x {len(current.times) // current.photos} rounds, long side {SIDE} px:")
    for engine in engines:
        print(
            f"  {engine.label:9s} median {statistics.median(engine.times):5.0f} ms"
            f"   p90 {p90(engine.times):5.0f} ms   CPU median {statistics.median(engine.cpu):5.0f} ms"
            f"   first photo (loads models) {engine.first_ms:5.0f} ms"
        )
    if len(engines) == 2:
        base = engines[1]
        median_ratio = statistics.median(current.times) / statistics.median(base.times)
        cpu_ratio = statistics.median(current.cpu) / statistics.median(base.cpu)
        print(
            f"  ratio     median {median_ratio:.2f}x   p90 {p90(current.times) / p90(base.times):.2f}x"
            f"   CPU {cpu_ratio:.2f}x"
        )
    if current.models:
        wall = sum(current.times)
        print("  this engine's time in each model (ms per photo, and as a share of the photo's wall time;")
        print("  the text is read beside the rest, so the shares add up past 100%):")
        for name, values in sorted(current.models.items(), key=lambda item: -sum(item[1])):
            print(f"    {name:20s} {sum(values) / len(current.times):6.1f} ms  {sum(values) / wall:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("photos", nargs="*", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout whose engine runs alongside")
    args = parser.parse_args()
    paths = args.photos or (
        sorted(p for p in SHARED.rglob("*") if p.suffix in {".jpg", ".png"}) if SHARED.is_dir() else []
    )
    engines = [Engine("this", ROOT, paths)]
    if args.baseline is not None:
        engines.append(Engine("baseline", args.baseline.resolve(), paths))
    for round_number in range(args.rounds):
        for index in range(engines[0].photos):
            order = engines if round_number % 2 == 0 else engines[::-1]
            for engine in order:
                engine.analyse(index)
    for engine in engines:
        engine.close()
    report(engines)


if __name__ == "__main__":
    main()
