"""Scene labels (night, snow, sky, outdoors; people, portrait) from the photo's colours and what was found.

No scene classifier (Places365-like) or image-text model ships under a permissive licence in a
package these machines can install, so scenes the ImageNet classes cannot name come from simple,
general image statistics on a small thumbnail, each tied to a physical cue rather than to any
photo:

- Sky: a blue, unsaturated-to-medium, bright band in the top third (clear daytime sky).
- Night: the top third is very dark and the photo as a whole is dark, yet holds some bright
  points (lights); a merely underexposed indoor photo without lights is not called night.
- Snow: most of the lower two thirds is bright and nearly colourless, *and* there is an outdoor
  cue (sky, or a winter class such as ski, alp or snowmobile among the classifier's labels),
  so a white wall or a sheet of paper is not snow.
- Outdoors: any of sky, snow or night, or a classifier label under "Outdoors".

People-based labels follow Rekognition's: "People" for two or more persons, "Crowd" for six or
more, "Portrait" when one face fills a good part of the frame.

Confidences are graded by how clearly the cue holds (0.55 at the threshold, up to 0.95).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from PIL import Image

from core.analysis_types import DetectedObject, Face, Label

__all__ = ["scene_labels"]

THUMB = 96
SKY_SHARE = 0.45  # of the top third: a clear sky fills most of it; a blue backdrop behind a head less
CATEGORY = "Nature and Outdoors"
WINTER = frozenset({"Snow", "Skiing", "Snowmobile", "Bobsled", "Alp", "Ski", "Dogsled", "Snowplow"})
OUTDOOR = frozenset({"Outdoors", "Landscape", "Mountain", "Beach", "Water", "Street", "Nature"})


def _grade(value: float, threshold: float, full: float) -> float:
    """0.55 at the threshold rising to 0.95 at `full` (or beyond)."""
    span = max(full - threshold, 1e-6)
    return round(0.55 + 0.4 * min(max((value - threshold) / span, 0.0), 1.0), 4)


def _hsv(image: Image.Image) -> npt.NDArray[np.float32]:
    small = image.convert("RGB")
    small.thumbnail((THUMB, THUMB), Image.Resampling.BOX)
    return np.asarray(small.convert("HSV"), dtype=np.float32) / 255.0


def colour_cues(image: Image.Image) -> dict[str, float]:
    """The shares behind the scene labels: sky, snow, darkness and lights (all 0..1)."""
    hsv = _hsv(image)
    hue, sat, val = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    rows = hsv.shape[0]
    top, lower = slice(0, max(rows // 3, 1)), slice(rows // 3, rows)
    blue = (hue >= 190) & (hue <= 250) & (sat >= 0.15) & (sat <= 0.8) & (val >= 0.45)
    white = (val >= 0.72) & (sat <= 0.12)
    return {
        "sky": float(blue[top].mean()),
        "snow": float(white[lower].mean()),
        "top_brightness": float(val[top].mean()),
        "brightness": float(val.mean()),
        "lights": float((val >= 0.6).mean()),
    }


def scene_labels(
    image: Image.Image,
    classified: tuple[Label, ...],
    people: tuple[DetectedObject, ...],
    faces: tuple[Face, ...],
) -> tuple[Label, ...]:
    """Scene and people labels, with Rekognition-like names and parents, most confident first."""
    cues = colour_cues(image)
    names = {label.name for label in classified} | {p for label in classified for p in label.parents}
    found: dict[str, Label] = {}

    def add(name: str, confidence: float, parents: tuple[str, ...] = (), category: str = CATEGORY) -> None:
        if name not in found or found[name].confidence < confidence:
            found[name] = Label(name, confidence, parents=parents, categories=(category,))

    sky = cues["sky"] >= SKY_SHARE
    if sky:
        add("Sky", _grade(cues["sky"], SKY_SHARE, 0.9), ("Outdoors", "Nature"))
    night = cues["top_brightness"] <= 0.18 and cues["brightness"] <= 0.25 and 0.001 <= cues["lights"] <= 0.15
    if night:
        add("Night", _grade(0.18 - cues["top_brightness"], 0.0, 0.12), ("Outdoors",))
    winter = bool(names & WINTER)
    if cues["snow"] >= 0.4 and (sky or winter):
        add("Snow", _grade(cues["snow"], 0.4, 0.8), ("Outdoors", "Nature"))
    if found or names & OUTDOOR:
        add("Outdoors", max((label.confidence for label in found.values()), default=0.6))
        if "Snow" in found or "Sky" in found:
            add("Nature", found["Outdoors"].confidence * 0.95)
    count = max(len(people), len(faces))
    if count >= 2:
        best = max([p.confidence for p in people] + [f.confidence for f in faces])
        add("People", round(best, 4), ("Person",), "Person Description")
    if count >= 6:
        add("Crowd", 0.8, ("People", "Person"), "Person Description")
    if len(faces) == 1 and count <= 1 and faces[0].box.width * faces[0].box.height >= 0.04:
        add("Portrait", _grade(faces[0].box.width * faces[0].box.height, 0.04, 0.2),
            ("Face", "Head", "Person", "Photography"), "Person Description")  # fmt: skip
        add("Photography", found["Portrait"].confidence * 0.95, (), "Hobbies and Interests")
    return tuple(sorted(found.values(), key=lambda label: -label.confidence))
