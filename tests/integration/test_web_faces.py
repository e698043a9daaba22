"""The web page's face list points at the faces the annotated image numbers the same way.

The recognizer hands faces back in its own order (BlazeFace by score, Rekognition by its own
rule); the annotated JPEG, the summary and the JSON number them left to right. Hovering "#1" on
the page must highlight the box drawn as #1, whatever order the recognizer used.
"""

from __future__ import annotations

import re
from pathlib import Path

from core.analysis_types import Analysis, Box, Face, FaceAttributes, Feature, PreparedPhoto
from tests.integration.web_harness import running_web

#: Three faces, right to left, each of another age so the descriptions tell them apart.
FACES = (
    Face(Box(0.70, 0.20, 0.15, 0.20), 0.99, FaceAttributes(age_low=60, age_high=70)),
    Face(Box(0.40, 0.25, 0.15, 0.20), 0.98, FaceAttributes(age_low=30, age_high=40)),
    Face(Box(0.05, 0.30, 0.15, 0.20), 0.97, FaceAttributes(age_low=5, age_high=10)),
)


class RightToLeftRecognizer:
    name = "scripted"
    capabilities = frozenset({Feature.FACES})

    async def analyze(self, photo: PreparedPhoto, features: frozenset[Feature]) -> Analysis:
        return Analysis(backend=self.name, features=features & self.capabilities, faces=FACES)


async def test_face_number_n_on_the_page_is_box_n_of_the_annotated_image(tmp_path: Path) -> None:
    async with running_web(tmp_path, recognizer=RightToLeftRecognizer()) as web:
        await web.sign_in()
        result_id = await web.uploaded_id()
        status = await web.finished(result_id)
        html = (await web.get(f"/results/{result_id}")).text
    assert status["status"] == "done"
    boxes = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'data-box-id="(b\d+)" data-left="([0-9.]+)"', html)
    }
    items = re.findall(
        r'<li class="face" data-box-ids="([^"]*)"[^>]*><span class="tag">([^<]*)</span>([^<]*)', html
    )
    lefts = [boxes[ids] for ids, _, _ in items]
    assert [tag.strip() for _, tag, _ in items] == ["#1", "#2", "#3"]
    assert lefts == sorted(lefts) == [0.05, 0.4, 0.7]
    assert ["5" in text for _, _, text in items] == [True, False, False]  # #1 is the child, on the left
