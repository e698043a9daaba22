"""Score the embedded recognizer against hand-counted truth, alike in the tests and bench/quality.py.

A truth file maps a photo's name (relative to its folder) to `faces` ([min, max] people's faces),
`subject` (words, any of which among the top-5 label names or the object names counts) and, in the
second set, `objects` (boxes a person drew, each with the names a detector may give it) and
`people` (each face's horizontal centre, gender as seen and an apparent-age band, by eye). The
bars come from issue 10: faces counted right, no false face on a photo without people, the main
subject found, and drawn boxes found by a detected box of a fitting name with IoU >= 0.5; gender
and age are scored on every detected face that has a hand-labelled person near it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.analysis_types import Analysis, Box, Feature, Photo
from core.prepare import prepare_photo
from core.recognizers.local import LocalRecognizer

IOU_FOUND = 0.5
PERSON_NEAR = 0.08  # a detected face is that person's when their centres are this close (share of width)
WANTED = frozenset({Feature.FACES, Feature.LABELS, Feature.TEXT})


def load_truth(path: Path) -> dict[str, dict[str, Any]]:
    """The photos of a truth file, without its `_about` notes."""
    return {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if not k.startswith("_")}


def with_people(truth: dict[str, dict[str, Any]], labels: Path) -> dict[str, dict[str, Any]]:
    """The truth with the `people` hand labels kept in a file beside it (for a truth file that is
    not ours to change); photos the labels do not name are left as they are."""
    people = load_truth(labels)
    return {name: {**expected, "people": people[name]} if name in people else expected
            for name, expected in truth.items()}  # fmt: skip


def analyse(folder: Path, names: Iterable[str], recognizer: LocalRecognizer) -> dict[str, Analysis]:
    """Faces and labels (with objects) of each photo, prepared as the bot prepares an upload."""
    return {
        name: recognizer.analyze_image(prepare_photo(Photo((folder / name).read_bytes(), name)).image, WANTED)
        for name in names
    }


def iou(a: Box, b: tuple[float, float, float, float]) -> float:
    """Intersection over union of a detected box and a drawn [left, top, width, height] box."""
    left, top = max(a.left, b[0]), max(a.top, b[1])
    right, bottom = min(a.left + a.width, b[0] + b[2]), min(a.top + a.height, b[1] + b[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a.width * a.height + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Score:
    """How one set went: counts, and what was missed, so a failing bar says which photos."""

    photos: int = 0
    faces_right: int = 0
    without_people: int = 0
    false_faces: int = 0
    subject_found: int = 0
    boxes: int = 0
    boxes_found: int = 0
    genders: int = 0  # detected faces with a hand-labelled person
    genders_said: int = 0  # ... of which the recognizer gave a gender (it may decline when unsure)
    genders_right: int = 0  # ... of which it was the labelled one
    ages: int = 0
    ages_right: int = 0
    misses: dict[str, list[str]] = field(default_factory=dict)

    def miss(self, kind: str, what: str) -> None:
        self.misses.setdefault(kind, []).append(what)

    @staticmethod
    def share(part: int, whole: int) -> float:
        return part / whole if whole else 1.0

    def summary(self) -> str:
        return (
            f"faces right {self.faces_right}/{self.photos} "
            f"({self.share(self.faces_right, self.photos):.0%}), "
            f"false faces on {self.false_faces}/{self.without_people} photos without people, "
            f"subject in top 5 {self.subject_found}/{self.photos} "
            f"({self.share(self.subject_found, self.photos):.0%}), "
            f"boxes found {self.boxes_found}/{self.boxes} ({self.share(self.boxes_found, self.boxes):.0%}), "
            f"gender said on {self.genders_said}/{self.genders}, right on {self.genders_right}/"
            f"{self.genders_said} ({self.share(self.genders_right, self.genders_said):.0%}), "
            f"age range meets the hand band {self.ages_right}/{self.ages} "
            f"({self.share(self.ages_right, self.ages):.0%})"
        )


def score(truth: dict[str, dict[str, Any]], results: dict[str, Analysis]) -> Score:
    """Compare each photo's analysis with its truth."""
    result = Score()
    for name, expected in truth.items():
        analysis = results[name]
        result.photos += 1
        low, high = expected["faces"]
        count = len(analysis.faces)
        if low <= count <= high:
            result.faces_right += 1
        else:
            result.miss("faces", f"{name}: {count} not in [{low}, {high}]")
        if high == 0:
            result.without_people += 1
            if count:
                result.false_faces += 1
        names = [label.name.lower() for label in analysis.labels[:5]]
        names += [obj.name.lower() for obj in analysis.objects]
        if {word.lower() for word in expected["subject"]} & set(names):
            result.subject_found += 1
        else:
            result.miss("subject", f"{name}: {names[:8]}")
        for drawn in expected.get("objects", []):
            result.boxes += 1
            fitting = {n.lower() for n in drawn["names"]}
            best = max(
                (
                    iou(obj.box, tuple(drawn["box"]))
                    for obj in analysis.objects
                    if obj.name.lower() in fitting
                ),
                default=0.0,
            )
            if best >= IOU_FOUND:
                result.boxes_found += 1
            else:
                result.miss("boxes", f"{name}: {drawn['names'][0]} best IoU {best:.2f}")
        _score_people(name, expected.get("people", []), analysis, result)
    return result


def _score_people(name: str, people: list[dict[str, Any]], analysis: Analysis, result: Score) -> None:
    """Gender and age of each detected face against the hand-labelled person nearest to it."""
    for face in analysis.faces:
        centre = face.box.left + face.box.width / 2
        person = min(people, key=lambda p: abs(float(p["x"]) - centre), default=None)
        if person is None or abs(float(person["x"]) - centre) > PERSON_NEAR:
            continue
        attributes = face.attributes
        result.genders += 1
        result.genders_said += attributes.gender is not None
        if attributes.gender == person["gender"]:
            result.genders_right += 1
        elif attributes.gender is None:
            result.miss("gender", f"{name} at {centre:.2f}: not said for {person['gender']}")
        else:
            result.miss("gender", f"{name} at {centre:.2f}: {attributes.gender} for {person['gender']}")
        low, high = person["age"]
        result.ages += 1
        if (
            attributes.age_low is not None
            and attributes.age_high is not None
            and (attributes.age_low <= high and attributes.age_high >= low)
        ):
            result.ages_right += 1
        else:
            said = f"{attributes.age_low}-{attributes.age_high}"
            result.miss("age", f"{name} at {centre:.2f}: {said} for {low}-{high}")
