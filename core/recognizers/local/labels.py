"""Whole-photo labels and boxed things: the label pipeline, and the summary that merges its answers.

`find_labels` runs, in this order, on the same photo:

1. the COCO detector (`detector`): boxes for 80 kinds, people included;
2. BlazePose (`people`): a box per body, grown to the faces already found, then merged with the
   detector's people so each person is boxed once;
3. the ImageNet classifier (`classifier`): labels for the photo as a whole;
4. the classifier's activation maps (`objects`): boxes for kinds the labels name and COCO lacks;
5. colour cues and head counts (`scenes`): sky, night, snow, outdoors, people, portrait;

and, once the text is read too, `Findings.labelled` (`summarise_labels`) merges them into one
list with Rekognition's names and parents: "Person" when people or faces were found, "Face",
"Text" when the text reader found lines, each boxed kind, the classifier's labels, and the
scenes, never ahead of the photo's subject.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PIL import Image

from core.analysis_types import DetectedObject, Face, Label, TextLine
from core.recognizers.local.classifier import CATEGORY, classify
from core.recognizers.local.detector import detect_objects
from core.recognizers.local.faces import detect_faces
from core.recognizers.local.inference import ModelRegistry
from core.recognizers.local.objects import find_objects
from core.recognizers.local.people import detect_people, include_faces, merge_people
from core.recognizers.local.scenes import scene_labels
from core.recognizers.local.taxonomy import PARENTS, ancestors

__all__ = ["Findings", "find_labels", "summarise_labels"]


@dataclass(frozen=True)
class Findings:
    """What the label models saw on a photo; the labels follow once the text is known too."""

    people: tuple[DetectedObject, ...]
    things: tuple[DetectedObject, ...]  # boxed non-people, the detector's then the classifier's
    classified: tuple[Label, ...]
    scenes: tuple[Label, ...]
    faces: tuple[Face, ...]

    def labelled(self, text: tuple[TextLine, ...]) -> tuple[tuple[DetectedObject, ...], tuple[Label, ...]]:
        """The boxed objects (people first) and the summary's labels ("Text" when `text` has lines)."""
        labels = summarise_labels(self.people, self.faces, text, self.classified, self.scenes, self.things)
        return self.people + self.things, labels


def find_labels(image: Image.Image, models: ModelRegistry, faces: tuple[Face, ...] | None = None) -> Findings:
    """Run the label models, in order (see the module's docstring).

    `faces` are those the faces feature found, or None when it did not run: people's boxes reach
    to their faces, so they are then found here, without attributes.
    """
    if faces is None:
        faces = detect_faces(image, models, attributes=False)
    detected = detect_objects(image, models)
    people = merge_people(include_faces(detect_people(image, models), faces), detected)
    classified = classify(image, models)
    things = tuple(o for o in detected if o.name != "Person")
    things += find_objects(image, models, classified)  # kinds COCO lacks; never people
    scenes = scene_labels(image, classified, people, faces)
    return Findings(people, things, classified, scenes, faces)


def summarise_labels(
    people: tuple[DetectedObject, ...],
    faces: tuple[Face, ...],
    text: tuple[TextLine, ...],
    classified: tuple[Label, ...] = (),
    scenes: tuple[Label, ...] = (),
    things: tuple[DetectedObject, ...] = (),
) -> tuple[Label, ...]:
    """Whole-photo labels, most confident first, with Rekognition's names and parents.

    `classified` (the classifier's labels, already in their own order, which puts a subject
    before a slightly more confident ancestor) is merged in without reordering it; a name both
    sources give is kept once, from the detectors. `scenes` (from `scenes.scene_labels`) are
    merged by confidence too, but never ahead of the first subject: "Outdoors" or "Sky" says
    where, the photo's subject says what, and the subject leads as it does with Rekognition.
    """
    labels: list[Label] = []
    person = max([p.confidence for p in people] + [f.confidence for f in faces], default=0.0)
    if person > 0:
        labels.append(Label("Person", round(person, 4), categories=("Person Description",)))
    if faces:
        best = max(f.confidence for f in faces)
        labels.append(
            Label("Face", round(best, 4), parents=("Head", "Person"), categories=("Person Description",))
        )
    if text:
        best = max(t.confidence for t in text)
        labels.append(Label("Text", round(best, 4), categories=("Text and Documents",)))
    strongest: dict[str, float] = {}
    for thing in things:  # each boxed kind is a label too, with its parents when the taxonomy knows it
        strongest[thing.name] = max(strongest.get(thing.name, 0.0), thing.confidence)
    known = {label.name: label for label in classified}
    for name, confidence in strongest.items():
        if name in known:  # the classifier's label (placed before its parents) is kept, as sure as either
            boost = max(known[name].confidence, round(confidence, 4))
            classified = tuple(replace(c, confidence=boost) if c.name == name else c for c in classified)
            continue
        parents = tuple(n for n, _ in ancestors(PARENTS.get(name, ())))
        labels.append(Label(name, round(confidence, 4), parents=parents, categories=(CATEGORY,)))
    detected = sorted(labels, key=lambda label: label.confidence, reverse=True)
    names = {label.name for label in detected}
    others = [label for label in classified if label.name not in names]
    merged: list[Label] = []
    while detected or others:
        if detected and (not others or detected[0].confidence >= others[0].confidence):
            merged.append(detected.pop(0))
        else:
            merged.append(others.pop(0))
    taken = {label.name for label in merged}
    places = [label for label in scenes if label.name not in taken]
    if not places:
        return tuple(merged)
    out: list[Label] = merged[:1]
    rest = merged[1:]
    while rest or places:
        if rest and (not places or rest[0].confidence >= places[0].confidence):
            out.append(rest.pop(0))
        else:
            out.append(places.pop(0))
    return tuple(out)
