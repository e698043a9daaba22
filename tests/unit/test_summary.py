"""The platform-neutral summary and its plain-text rendering."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.analysis_types import (
    Analysis,
    Box,
    Celebrity,
    Color,
    DetectedObject,
    Emotion,
    ErrorKind,
    ExifData,
    Face,
    FaceAttributes,
    Feature,
    FeatureError,
    GpsPosition,
    ImageProperties,
    Label,
    ModerationLabel,
    TextLine,
)
from core.summary import (
    CameraSection,
    FacesSection,
    HiddenLocationSection,
    LabelsSection,
    LocationSection,
    ModerationSection,
    ObjectsSection,
    RecognizerSection,
    Summary,
    TextSection,
    build_summary,
    format_camera,
    format_f_number,
    format_focal_length,
    format_percent,
    format_taken,
    render_text,
)
from core.summary_text import one_line

ALL = frozenset(Feature)
BOX = Box(0.1, 0.1, 0.2, 0.2)

IPHONE = ExifData(
    make="Apple",
    model="iPhone 13 Pro",
    lens="iPhone 13 Pro back triple camera 5.7mm f/1.5",
    datetime_original=datetime(2023, 5, 14, 18, 3, 21, tzinfo=timezone(timedelta(hours=2))),
    exposure_time=1 / 120,
    f_number=1.5,
    iso=50,
    focal_length=26.0,
    focal_length_35mm=77.0,
    flash="did not fire",
    gps=GpsPosition(latitude=48.858370, longitude=2.294481, altitude=35.2, direction=270.0),
    image_width=4032,
    image_height=3024,
)


def _face(left: float, **attrs: object) -> Face:
    return Face(Box(left, 0.2, 0.1, 0.15), 0.99, FaceAttributes(**attrs))  # type: ignore[arg-type]


def rich_analysis() -> Analysis:
    return Analysis(
        backend="rekognition",
        features=ALL,
        labels=(*(Label(f"Label{i}", 0.99 - i * 0.05) for i in range(10)), Label("Dog", 0.97)),
        objects=(
            DetectedObject("Person", 0.99, BOX),
            DetectedObject("Dog", 0.97, BOX),
            DetectedObject("Person", 0.95, BOX),
        ),
        faces=(
            _face(0.6, age_low=40, age_high=48, smiling=False, emotions=(Emotion("HAPPY", 0.8),)),
            _face(
                0.1, age_low=25, age_high=32, smiling=True, eyeglasses=True, emotions=(Emotion("HAPPY", 0.9),)
            ),
        ),
        text=tuple(TextLine(f"line {i}", 0.9, BOX) for i in range(9)),
        moderation=(
            ModerationLabel("Suggestive", 0.91),
            ModerationLabel("Revealing Clothes", 0.93, "Suggestive"),
        ),
        celebrities=(Celebrity("Jane Example", 0.98, BOX, ("www.example.com/jane",)),),
        properties=ImageProperties(
            brightness=0.9,
            sharpness=0.95,
            contrast=0.5,
            dominant_colors=(Color("#00ff00", 0.34, "green"), Color("#0000ff", 0.2, "blue")),
        ),
    )


# --- model ----------------------------------------------------------------------------------


def test_rich_analysis_gives_every_section_in_order() -> None:
    summary = build_summary(rich_analysis(), IPHONE, show_location=True, requested=ALL, capabilities=ALL)

    kinds = [type(s).__name__ for s in summary.sections]
    assert kinds == [
        "ModerationSection",
        "LabelsSection",
        "ObjectsSection",
        "FacesSection",
        "CelebritiesSection",
        "TextSection",
        "CameraSection",
        "LocationSection",
        "PropertiesSection",
        "RecognizerSection",
    ]
    labels = summary.get(LabelsSection)
    assert labels is not None
    assert [i.name for i in labels.items][:3] == ["Label0", "Dog", "Label1"]
    assert (len(labels.items), labels.omitted) == (8, 3)
    objects = summary.get(ObjectsSection)
    assert objects is not None
    assert objects.phrase == "2 people, 1 dog"
    assert objects.total == 3
    faces = summary.get(FacesSection)
    assert faces is not None
    assert [(f.tag, f.description) for f in faces.faces] == [
        ("#1", "25-32, smiling, glasses"),
        ("#2", "40-48, happy"),
    ]
    text = summary.get(TextSection)
    assert text is not None
    assert (len(text.lines), text.omitted) == (6, 3)
    moderation = summary.get(ModerationSection)
    assert moderation is not None
    assert [m.name for m in moderation.items] == ["Revealing Clothes", "Suggestive"]


def test_summary_is_immutable() -> None:
    summary = build_summary(rich_analysis(), IPHONE, show_location=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.sections = ()  # type: ignore[misc]
    labels = summary.get(LabelsSection)
    assert labels is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        labels.items[0].name = "x"  # type: ignore[misc]
    assert isinstance(summary.sections, tuple)


def test_rich_analysis_renders_as_short_plain_text() -> None:
    summary = build_summary(rich_analysis(), IPHONE, show_location=True, requested=ALL, capabilities=ALL)
    text = render_text(summary)
    lines = text.splitlines()

    assert lines[0] == "CONTENT WARNING: Revealing Clothes 93%, Suggestive 91%"
    assert "Labels: Label0 99%, Dog 97%, Label1 94%, Label2 89%" in text
    assert "(+3 more)" in text
    assert "Objects: 2 people, 1 dog" in lines
    assert lines[lines.index("Faces: 2 faces") + 1 :][:2] == [
        "  #1 25-32, smiling, glasses",
        "  #2 40-48, happy",
    ]
    assert "Celebrities: Jane Example 98%" in lines
    assert "Text (9 lines, first 6 shown):" in lines
    assert "  line 5" in lines
    assert "  line 6" not in lines
    assert (
        "Camera: Apple iPhone 13 Pro · 26 mm (77 mm equiv.) · f/1.5 · 1/120 s · ISO 50 · flash did not fire"
        in lines
    )
    assert "Lens: iPhone 13 Pro back triple camera 5.7mm f/1.5" in lines
    assert "Taken: 2023-05-14 18:03 (UTC+02:00)" in lines
    assert "Image: very bright, sharp; colours green 34%, blue 20%" in lines
    assert lines[-1] == "Recognizer: rekognition"
    assert len(lines) < 30


def test_empty_analysis_with_exif_only() -> None:
    """No recognizer at all (`NullRecognizer`): the camera data still comes through."""
    analysis = Analysis(backend="none")
    requested = frozenset({Feature.LABELS, Feature.FACES, Feature.TEXT, Feature.MODERATION})
    exif = ExifData(make="Canon", model="Canon EOS R5", f_number=8.0, exposure_time=0.004, iso=100)

    summary = build_summary(analysis, exif, show_location=True, requested=requested, capabilities=frozenset())

    assert [type(s) for s in summary.sections] == [CameraSection, RecognizerSection]
    assert summary.recognizer.found_nothing is False  # nothing ran, so nothing was "not found"
    assert render_text(summary).splitlines() == [
        "Camera: Canon EOS R5 · f/8 · 1/250 s · ISO 100",
        "Recognizer: none",
        "  Not available with this recognizer: labels, face analysis, text recognition, content moderation",
    ]


def test_nothing_at_all_gives_only_the_recognizer_line() -> None:
    summary = build_summary(Analysis(backend="none"), ExifData(), show_location=True)
    assert render_text(summary) == "Recognizer: none"


def test_features_that_ran_and_found_nothing_say_so() -> None:
    analysis = Analysis(backend="local", features=frozenset({Feature.FACES}))
    summary = build_summary(analysis, ExifData(), show_location=False)
    assert render_text(summary).splitlines() == ["Recognizer: local", "  Nothing recognised in this photo."]


# --- location -------------------------------------------------------------------------------


def test_location_shown_with_map_link_and_altitude() -> None:
    summary = build_summary(Analysis(backend="none"), IPHONE, show_location=True)
    location = summary.get(LocationSection)
    assert location is not None
    assert (
        location.map_url
        == "https://www.openstreetmap.org/?mlat=48.85837&mlon=2.29448#map=16/48.85837/2.29448"
    )
    lines = render_text(summary).splitlines()
    assert "Location: 48.85837, 2.29448 · 35 m above sea level · facing W (270°)" in lines
    assert f"  Map: {location.map_url}" in lines


def test_location_hidden_leaves_no_trace_of_the_coordinates() -> None:
    summary = build_summary(rich_analysis(), IPHONE, show_location=False)

    assert summary.get(LocationSection) is None
    hidden = summary.get(HiddenLocationSection)
    assert hidden is not None
    assert [f.name for f in dataclasses.fields(hidden)] == ["note"]
    text = render_text(summary)
    assert "Location: The photo carries a GPS location, which is not shown." in text.splitlines()
    for leak in ("48.8", "2.29", "48,8", "openstreetmap", "mlat", "map=", "sea level", "270"):
        assert leak not in text
        assert leak not in repr(summary)


def test_no_location_section_without_gps_or_with_corrupt_gps() -> None:
    assert (
        build_summary(Analysis(backend="x"), ExifData(make="X"), show_location=True).get(LocationSection)
        is None
    )
    corrupt = ExifData(gps=GpsPosition(latitude=123.0, longitude=float("nan")))
    summary = build_summary(Analysis(backend="x"), corrupt, show_location=True)
    assert summary.get(LocationSection) is None
    assert "Location" not in render_text(summary)


def test_below_sea_level() -> None:
    exif = ExifData(gps=GpsPosition(latitude=31.5, longitude=35.5, altitude=-430.4))
    location = build_summary(Analysis(backend="x"), exif, show_location=True).get(LocationSection)
    assert location is not None
    assert location.altitude_text == "430 m below sea level"


# --- failures and capabilities ---------------------------------------------------------------


def test_failed_and_unsupported_features_are_mentioned() -> None:
    analysis = Analysis(
        backend="local",
        features=frozenset({Feature.LABELS, Feature.TEXT}),
        labels=(Label("Dog", 0.9),),
        errors=(FeatureError(Feature.TEXT, ErrorKind.TIMEOUT, "OCR took longer than 10 s"),),
    )
    summary = build_summary(
        analysis,
        ExifData(),
        show_location=True,
        requested=frozenset({Feature.LABELS, Feature.TEXT, Feature.CELEBRITIES, Feature.MODERATION}),
        capabilities=frozenset({Feature.LABELS, Feature.TEXT}),
    )

    recognizer = summary.recognizer
    assert [(f.feature, f.kind, f.name) for f in recognizer.failed] == [
        (Feature.TEXT, ErrorKind.TIMEOUT, "text recognition")
    ]
    assert recognizer.unsupported == (Feature.MODERATION, Feature.CELEBRITIES)
    lines = render_text(summary).splitlines()
    assert lines[-3:] == [
        "Recognizer: local",
        "  Failed: text recognition (timeout: OCR took longer than 10 s)",
        "  Not available with this recognizer: content moderation, celebrity recognition",
    ]


def test_without_capabilities_nothing_is_claimed_unsupported() -> None:
    summary = build_summary(Analysis(backend="x"), ExifData(), show_location=True, requested=ALL)
    assert summary.recognizer.unsupported == ()


def test_moderation_comes_first_even_with_everything_else_present() -> None:
    summary = build_summary(rich_analysis(), IPHONE, show_location=True)
    assert isinstance(summary.sections[0], ModerationSection)
    assert render_text(summary).startswith("CONTENT WARNING: ")


# --- hostile strings -------------------------------------------------------------------------

HOSTILE = "evil\nInjected: line\r\x1b[31mred\x1b[0m\u2028\u202eTXT\x00\ud800"


def test_hostile_strings_cannot_break_out_of_their_line() -> None:
    analysis = Analysis(
        backend="rekognition",
        features=ALL,
        labels=(Label(HOSTILE, 0.9),),
        objects=(DetectedObject(HOSTILE, 0.9, BOX),),
        text=(TextLine(HOSTILE, 0.9, BOX),),
        moderation=(ModerationLabel(HOSTILE, 0.9),),
        errors=(FeatureError(Feature.FACES, ErrorKind.ERROR, HOSTILE),),
    )
    exif = ExifData(make=HOSTILE, model=HOSTILE, lens=HOSTILE, software=HOSTILE, flash=HOSTILE)
    text = render_text(build_summary(analysis, exif, show_location=True))
    lines = text.split("\n")

    for control in ("\x1b", "\r", "\x00", "\u2028", "\u202e"):
        assert control not in text
    assert all(one_line(line) == line for line in lines)
    assert not any(line.startswith("Injected") for line in lines)
    assert [line.split(":", 1)[0] for line in lines] == [
        "CONTENT WARNING",
        "Labels",
        "Objects",
        "Text (1 line)",
        "  evil Injected",
        "Camera",
        "Lens",
        "Software",
        "Recognizer",
        "  Failed",
    ]
    text.encode("utf-8")  # a lone surrogate would make printing raise


def test_one_line_keeps_ordinary_unicode() -> None:
    assert one_line("Café 東京 👨‍👩‍👧 «ok»") == "Café 東京 👨‍👩‍👧 «ok»"
    assert one_line("a\tb\nc\x1b[0m\u200fd") == "a b c [0m d"


def test_very_long_values_are_clipped() -> None:
    exif = ExifData(model="X" * 5000)
    camera = build_summary(Analysis(backend="x"), exif, show_location=True).get(CameraSection)
    assert camera is not None
    assert camera.camera is not None
    assert len(camera.camera) <= 120
    assert camera.camera.endswith("…")


# --- wording --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "model", "expected"),
    [
        ("Apple", "iPhone 13 Pro", "Apple iPhone 13 Pro"),
        ("Apple", "Apple iPhone 13 Pro", "Apple iPhone 13 Pro"),
        ("Canon", "Canon EOS R5", "Canon EOS R5"),
        ("NIKON CORPORATION", "NIKON D750", "NIKON D750"),
        ("EASTMAN KODAK COMPANY", "KODAK EASYSHARE C813", "KODAK EASYSHARE C813"),
        ("OLYMPUS IMAGING CORP.", "E-M10", "OLYMPUS E-M10"),
        ("samsung", "SM-G991B", "samsung SM-G991B"),
        ("Google", None, "Google"),
        (None, "Pixel 7", "Pixel 7"),
        ("  ", "  ", None),
        (None, None, None),
    ],
)
def test_camera_name_does_not_repeat_the_make(
    make: str | None, model: str | None, expected: str | None
) -> None:
    assert format_camera(make, model) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.8, "f/1.8"), (2.0, "f/2"), (1.78, "f/1.8"), (11.0, "f/11"), (0.0, None), (float("nan"), None)],
)
def test_f_number(value: float, expected: str | None) -> None:
    assert format_f_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(26.0, "26 mm"), (5.7, "5.7 mm"), (50.4, "50 mm"), (-1.0, None)]
)
def test_focal_length(value: float, expected: str | None) -> None:
    assert format_focal_length(value) == expected


def test_focal_length_equivalent_only_when_different() -> None:
    assert CameraSection(focal_length=50.0, focal_length_35mm=50.0).focal_text == "50 mm"
    assert CameraSection(focal_length_35mm=28.0).focal_text == "28 mm equiv."


@pytest.mark.parametrize(("value", "expected"), [(0.97, "97%"), (0.995, "100%"), (1.7, "100%"), (-0.2, "0%")])
def test_percent(value: float, expected: str) -> None:
    assert format_percent(value) == expected


def test_exposure_settings_use_photographers_notation() -> None:
    assert CameraSection(exposure_time=0.004).settings == ("1/250 s",)
    assert CameraSection(exposure_time=1 / 3).settings == ("1/3 s",)
    assert CameraSection(exposure_time=2.5).settings == ("2.5 s",)
    assert CameraSection(exposure_time=0.0).settings == ()


def test_date_taken_with_and_without_offset() -> None:
    assert format_taken(datetime(2020, 1, 2, 3, 4, 5)) == "2020-01-02 03:04"
    assert format_taken(datetime(2020, 1, 2, 3, 4, tzinfo=UTC)) == "2020-01-02 03:04 (UTC)"
    minus = timezone(-timedelta(hours=3, minutes=30))
    assert format_taken(datetime(2020, 1, 2, 3, 4, tzinfo=minus)) == "2020-01-02 03:04 (UTC-03:30)"


def test_object_counts_plural_and_case() -> None:
    objects = tuple(
        DetectedObject(name, 0.9, BOX)
        for name in [
            "Person",
            "Person",
            "Bus",
            "Bus",
            "Bus",
            "Butterfly",
            "Butterfly",
            "TV",
            "TV",
            "Traffic Light",
        ]
    )
    section = build_summary(Analysis(backend="x", objects=objects), ExifData(), show_location=True).get(
        ObjectsSection
    )
    assert section is not None
    assert section.phrase == "3 buses, 2 butterflies, 2 people, 2 TVs, 1 traffic light"


@pytest.mark.parametrize(
    ("name", "count", "phrase"),
    [
        ("Person", 2, "2 people"),
        ("Person", 1, "1 person"),
        ("Man", 3, "3 men"),
        ("Woman", 2, "2 women"),
        ("Child", 2, "2 children"),
        ("Knife", 2, "2 knives"),
        ("Shelf", 2, "2 shelves"),
        ("Mouse", 2, "2 mice"),
        ("Sheep", 4, "4 sheep"),
        ("Glasses", 2, "2 glasses"),
        ("Sunglasses", 2, "2 sunglasses"),
        ("Scissors", 2, "2 scissors"),
        ("Skis", 2, "2 skis"),
        ("Tomato", 2, "2 tomatoes"),
        ("Photo", 2, "2 photos"),
        ("Wine Glass", 2, "2 wine glasses"),
        ("Roof", 2, "2 roofs"),
        ("Toy", 2, "2 toys"),
        ("Police Man", 2, "2 police men"),
        ("Footwear", 2, "2 footwear"),
    ],
)
def test_object_counts_know_irregular_plurals(name: str, count: int, phrase: str) -> None:
    objects = tuple(DetectedObject(name, 0.9, BOX) for _ in range(count))
    section = build_summary(Analysis(backend="x", objects=objects), ExifData(), show_location=True).get(
        ObjectsSection
    )
    assert section is not None
    assert section.phrase == phrase


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({}, ""),
        ({"age_low": 30, "age_high": 30}, "30"),
        ({"age_low": 25}, "25+"),
        ({"smiling": True, "emotions": (Emotion("HAPPY", 0.99),)}, "smiling"),
        ({"emotions": (Emotion("CALM", 0.3), Emotion("SAD", 0.4))}, ""),
        ({"emotions": (Emotion("CALM", 0.7), Emotion("SAD", 0.2))}, "calm"),
        ({"eyeglasses": True, "sunglasses": True}, "sunglasses"),
        ({"gender": "Female", "age_low": 28, "age_high": 39}, "female, 28-39"),
        ({"gender": "Male", "smiling": True}, "male, smiling"),
        ({"gender": "<b>x</b>"}, ""),  # only the two known values are shown, never a backend's text
    ],
)
def test_face_one_liner(attrs: dict[str, object], expected: str) -> None:
    summary = build_summary(
        Analysis(backend="x", faces=(_face(0.1, **attrs),)), ExifData(), show_location=True
    )
    faces = summary.get(FacesSection)
    assert faces is not None
    assert faces.faces[0].description == expected


def test_summary_get_returns_none_for_absent_sections() -> None:
    summary = Summary((RecognizerSection(backend="x"),))
    assert summary.get(TextSection) is None
    assert summary.recognizer.backend == "x"
