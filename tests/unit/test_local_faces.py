"""The second, independent face check: BlazeFace proposes, the face mesh must agree.

A skin-coloured smiley is the generated stand-in for the quokka, apple and flower on which the
detector alone fired: the test first shows the detector does fire on it (else it would prove
nothing), then that no face is reported.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.recognizers.local.faces import TILE_MIN_SIDE, _mesh_fits, _tiles, detect_faces, face_candidates
from core.recognizers.local.inference import ModelRegistry


@pytest.fixture
def store(local_store: ModelRegistry) -> ModelRegistry:
    return local_store


def _smiley(diameter: int, colour: tuple[int, int, int]) -> Image.Image:
    """An emoji-like face: a disc, two oval eyes and a smiling arc."""
    image = Image.new("RGB", (1200, 900), (240, 240, 235))
    draw = ImageDraw.Draw(image)
    cx, cy, r = 600, 450, diameter / 2
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour, outline="black", width=max(2, int(r / 20)))
    for side in (-1, 1):
        ex, ey, e = cx + side * r * 0.35, cy - r * 0.25, r * 0.1
        draw.ellipse((ex - e, ey - e * 1.5, ex + e, ey + e * 1.5), fill="black")
    draw.arc(
        (cx - r * 0.55, cy - r * 0.3, cx + r * 0.55, cy + r * 0.6),
        20,
        160,
        fill="black",
        width=max(2, int(r / 12)),
    )
    return image


@pytest.mark.parametrize("diameter", [120, 250, 400])
def test_a_smiley_the_detector_takes_for_a_face_is_not_reported(store: ModelRegistry, diameter: int) -> None:
    smiley = _smiley(diameter, (225, 180, 150))
    assert face_candidates(smiley, store), "precondition: BlazeFace alone fires on this drawing"
    assert detect_faces(smiley, store) == ()
    assert detect_faces(smiley, store, attributes=False) == ()


def test_shapes_and_yellow_smileys_are_not_faces(store: ModelRegistry) -> None:
    shapes = Image.new("RGB", (1600, 1000), (240, 240, 235))
    draw = ImageDraw.Draw(shapes)
    draw.ellipse((150, 150, 650, 650), fill=(225, 180, 150))
    draw.rectangle((800, 200, 1400, 700), fill=(40, 90, 200))
    for image in (shapes, _smiley(300, (250, 210, 40))):
        assert detect_faces(image, store) == ()


def test_mesh_points_must_sit_on_the_detectors_box() -> None:
    box = (0.4, 0.4, 0.6, 0.6)
    on_box = np.array([[0.42, 0.41], [0.58, 0.59]])
    assert _mesh_fits(on_box, box)
    assert not _mesh_fits(on_box + 0.3, box)  # another place of the photo
    assert not _mesh_fits(np.array([[0.49, 0.49], [0.51, 0.51]]), box)  # a speck, not the face the box holds
    assert not _mesh_fits(np.array([[0.0, 0.0], [1.0, 1.0]]), box)  # the whole photo


def test_a_large_photo_is_also_read_in_four_overlapping_tiles() -> None:
    tiles = _tiles(1280, 886)
    assert len(tiles) == 4
    # Together they cover the photo, and neighbours overlap by a fifth of it, so a small face
    # lies whole inside at least one of them.
    assert min(t[0] for t in tiles) == 0
    assert min(t[1] for t in tiles) == 0
    assert max(t[2] for t in tiles) == 1280
    assert max(t[3] for t in tiles) == 886
    left, right = sorted(tiles)[0], sorted(tiles)[-1]
    assert left[2] - right[0] >= 0.19 * 1280
    assert _tiles(TILE_MIN_SIDE - 1, 400) == []
