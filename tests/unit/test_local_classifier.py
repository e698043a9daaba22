"""The local labeller: the torch-free checkpoint reader, EfficientNet-Lite0's ONNX graph, the taxonomy."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import types
import typing
import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from core.analysis_types import Box, DetectedObject, Label
from core.model_build import efficientnet
from core.model_build.pth import UnsafeCheckpoint, read_state_dict
from core.recognizers.local.classifier import MIN_CONFIDENCE, labels_from_probabilities
from core.recognizers.local.imagenet import CLASS_NAMES
from core.recognizers.local.labels import summarise_labels
from core.recognizers.local.taxonomy import CLASS_LABELS, PARENTS, ancestors

# --- writing checkpoints the way PyTorch does, without PyTorch --------------------------------


class _FakeStorage:
    def __init__(self, key: str, values: npt.NDArray[np.float32]) -> None:
        self.key = key
        self.values = np.ascontiguousarray(values, dtype="<f4").ravel()


class _FakeTensor:
    def __init__(self, storage: _FakeStorage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]):
        self.args: tuple[typing.Any, ...] = (storage, offset, shape, stride, False, collections.OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stand-ins registered as `torch` and `torch._utils` so pickle writes PyTorch's global names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: object) -> None:  # never called: only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    storage_type = type("FloatStorage", (), {"__module__": "torch", "__qualname__": "FloatStorage"})
    torch.FloatStorage = storage_type  # type: ignore[attr-defined]
    torch._utils = utils  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return types.SimpleNamespace(rebuild=_rebuild_tensor_v2, FloatStorage=storage_type)


def _state_pickle(fake: types.SimpleNamespace, state: dict[str, _FakeTensor]) -> bytes:
    class Writer(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            if isinstance(obj, _FakeStorage):
                return ("storage", fake.FloatStorage, obj.key, "cpu", obj.values.size)
            return None

        def reducer_override(self, obj: object) -> typing.Any:
            if isinstance(obj, _FakeTensor):
                return fake.rebuild, obj.args
            return NotImplemented

    buffer = io.BytesIO()
    Writer(buffer, protocol=2).dump(collections.OrderedDict(state))
    return buffer.getvalue()


def _zip_checkpoint(fake: types.SimpleNamespace, state: dict[str, _FakeTensor]) -> bytes:
    storages = {t.args[0].key: t.args[0] for t in state.values()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", _state_pickle(fake, state))
        for key, storage in storages.items():
            archive.writestr(f"archive/data/{key}", storage.values.tobytes())
    return buffer.getvalue()


def _legacy_checkpoint(fake: types.SimpleNamespace, state: dict[str, _FakeTensor]) -> bytes:
    storages = {t.args[0].key: t.args[0] for t in state.values()}
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(_state_pickle(fake, state))
    keys = sorted(storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        out.write(struct.pack("<q", storages[key].values.size))
        out.write(storages[key].values.tobytes())
    return out.getvalue()


def _sample_state() -> tuple[dict[str, _FakeTensor], dict[str, npt.NDArray[np.float32]]]:
    """Two tensors sharing one storage, one of them a transposed view at an offset."""
    values = np.arange(20, dtype=np.float32)
    shared = _FakeStorage("0", values)
    bias = _FakeStorage("1", np.array([0.5, -1.5], dtype=np.float32))
    state = {
        "conv.weight": _FakeTensor(shared, 0, (2, 3), (3, 1)),
        "conv.view": _FakeTensor(shared, 8, (3, 2), (1, 3)),  # the transpose of rows at offset 8
        "conv.bias": _FakeTensor(bias, 0, (2,), (1,)),
    }
    expected = {
        "conv.weight": values[:6].reshape(2, 3),
        "conv.view": values[8:14].reshape(2, 3).T,
        "conv.bias": np.array([0.5, -1.5], dtype=np.float32),
    }
    return state, expected


# --- the restricted reader ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", [_zip_checkpoint, _legacy_checkpoint])
def test_reads_both_checkpoint_formats(
    fake_torch: types.SimpleNamespace,
    layout: typing.Callable[[types.SimpleNamespace, dict[str, _FakeTensor]], bytes],
) -> None:
    state, expected = _sample_state()
    arrays = read_state_dict(layout(fake_torch, state))
    assert list(arrays) == list(expected)
    for name, array in expected.items():
        np.testing.assert_array_equal(arrays[name], array)
        assert arrays[name].dtype == np.float32


class _Exploit:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[typing.Any, ...]:
        return os.system, (self.command,)


def test_refuses_a_checkpoint_that_would_run_a_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = pickle.dumps({"weight": _Exploit(f"touch {marker}")}, protocol=2)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    with pytest.raises(UnsafeCheckpoint, match="system"):
        read_state_dict(buffer.getvalue())
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(collections.Counter(a=1), protocol=2),  # a harmless but unexpected class
        pickle.dumps({"weight": 3}, protocol=2),  # not a tensor
        b"\x80\x02garbage",
    ],
)
def test_refuses_anything_but_a_state_dict_of_tensors(payload: bytes) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    with pytest.raises(UnsafeCheckpoint):
        read_state_dict(buffer.getvalue())


def test_refuses_a_tensor_reaching_outside_its_storage(fake_torch: types.SimpleNamespace) -> None:
    storage = _FakeStorage("0", np.zeros(4, dtype=np.float32))
    with pytest.raises(UnsafeCheckpoint, match="outside"):
        read_state_dict(_zip_checkpoint(fake_torch, {"w": _FakeTensor(storage, 2, (3,), (1,))}))


# --- conversion and the numpy network ----------------------------------------------------------


def _random_checkpoint(seed: int = 0) -> dict[str, npt.NDArray[np.float32]]:
    """A state dict with EfficientNet-Lite0's names and shapes and random values."""
    rng = np.random.default_rng(seed)
    state: dict[str, npt.NDArray[np.float32]] = {}

    def conv(name: str, shape: tuple[int, ...]) -> None:
        fan_in = int(np.prod(shape[1:]))
        state[f"{name}.weight"] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)

    def bn(name: str, channels: int) -> None:
        state[f"{name}.weight"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
        state[f"{name}.bias"] = rng.uniform(-0.2, 0.2, channels).astype(np.float32)
        state[f"{name}.running_mean"] = rng.uniform(-0.2, 0.2, channels).astype(np.float32)
        state[f"{name}.running_var"] = rng.uniform(0.5, 2.0, channels).astype(np.float32)

    conv("_conv_stem", (32, 3, 3, 3))
    bn("_bn0", 32)
    for index, block in enumerate(efficientnet.BLOCKS):
        mid = block.inputs * block.expand
        if block.expand != 1:
            conv(f"_blocks.{index}._expand_conv", (mid, block.inputs, 1, 1))
            bn(f"_blocks.{index}._bn0", mid)
        conv(f"_blocks.{index}._depthwise_conv", (mid, 1, block.kernel, block.kernel))
        bn(f"_blocks.{index}._bn1", mid)
        conv(f"_blocks.{index}._project_conv", (block.outputs, mid, 1, 1))
        bn(f"_blocks.{index}._bn2", block.outputs)
    conv("_conv_head", (1280, 320, 1, 1))
    bn("_bn1", 1280)
    state["_fc.weight"] = (rng.standard_normal((1000, 1280)) / 36).astype(np.float32)
    state["_fc.bias"] = np.zeros(1000, dtype=np.float32)
    return state


@pytest.fixture(scope="module")
def random_state() -> dict[str, npt.NDArray[np.float32]]:
    return _random_checkpoint()


def test_folding_batchnorm_gives_the_same_stem_output(
    random_state: dict[str, npt.NDArray[np.float32]],
) -> None:
    """conv -> BatchNorm by the book equals the folded convolution, at one output pixel."""
    weight, bias = efficientnet.fold_batchnorm(random_state, "_conv_stem", "_bn0", (32, 3, 3, 3))
    rng = np.random.default_rng(1)
    patch = rng.standard_normal((3, 3, 3)).astype(np.float64)  # (channel, row, column)
    original = random_state["_conv_stem.weight"].astype(np.float64)  # (out, in, row, column)
    conv = np.einsum("oirc,irc->o", original, patch)
    gamma, beta = random_state["_bn0.weight"], random_state["_bn0.bias"]
    mean, var = random_state["_bn0.running_mean"], random_state["_bn0.running_var"]
    by_the_book = (conv - mean) / np.sqrt(var + 1e-3) * gamma + beta
    fused = np.einsum("oirc,irc->o", weight, patch) + bias
    np.testing.assert_allclose(fused, by_the_book, rtol=1e-5, atol=1e-5)


def _run(model: bytes, pixels: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
    import onnxruntime  # type: ignore[import-untyped]

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    outputs: list[npt.NDArray[np.float32]] = session.run(None, {"pixels": pixels})
    return outputs


def test_conversion_is_deterministic_and_the_graph_answers_both_questions(
    fake_torch: types.SimpleNamespace, random_state: dict[str, npt.NDArray[np.float32]]
) -> None:
    """The same checkpoint gives the same bytes (so the sha256 can be pinned); the graph takes any
    size, and its logits are the mean of its cells' (the linear layer commutes with the pooling)."""
    state = {
        name: _FakeTensor(_FakeStorage(str(i), value), 0, value.shape, _strides(value.shape))
        for i, (name, value) in enumerate(random_state.items())
    }
    checkpoint = _legacy_checkpoint(fake_torch, state)
    converted = efficientnet.convert_checkpoint(checkpoint)
    assert efficientnet.convert_checkpoint(checkpoint) == converted
    rng = np.random.default_rng(3)
    for height, width in [(224, 224), (96, 160)]:
        pixels = rng.uniform(-1, 1, (1, height, width, 3)).astype(np.float32)
        logits, cells = _run(converted, pixels)
        assert logits.shape == (1, 1000)
        assert cells.shape == (1, height // 32, width // 32, 1000)
        assert np.all(np.isfinite(logits))
        np.testing.assert_allclose(logits[0], cells[0].mean(axis=(0, 1)), rtol=1e-5, atol=1e-5)


def _strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))


def test_a_checkpoint_of_another_network_is_refused_at_conversion(
    random_state: dict[str, npt.NDArray[np.float32]],
) -> None:
    other = dict(random_state)
    other["_conv_stem.weight"] = np.zeros((48, 3, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="stem"):
        efficientnet.build(other)


# --- from probabilities to labels --------------------------------------------------------------


def _one_hot(**mass: float) -> npt.NDArray[np.float64]:
    p = np.zeros(1000)
    for name, share in mass.items():
        p[CLASS_NAMES.index(name.replace("_", " "))] = share
    return p


def test_the_class_list_is_imagenets() -> None:
    assert len(CLASS_NAMES) == 1000
    assert (CLASS_NAMES[0], CLASS_NAMES[281], CLASS_NAMES[657], CLASS_NAMES[999]) == (
        "tench",
        "tabby",
        "missile",
        "toilet tissue",
    )
    names = [own for own, _ in CLASS_LABELS]
    assert names.count("Crane (Bird)") == 1
    assert names.count("Construction Crane") == 1


def test_every_parent_is_known_and_the_tree_has_no_cycle() -> None:
    for _, parents in CLASS_LABELS:
        assert set(parents) <= set(PARENTS)
    for name, parents in PARENTS.items():
        assert set(parents) <= set(PARENTS)
        assert name not in dict(ancestors(parents))


@pytest.mark.parametrize(
    ("lemma", "expected"),
    [
        ("tabby", {"Cat", "Pet", "Mammal", "Animal"}),
        ("Egyptian cat", {"Cat"}),
        ("golden retriever", {"Dog", "Pet", "Animal"}),
        ("espresso", {"Coffee", "Beverage"}),
        ("coffee mug", {"Cup", "Coffee"}),
        ("moped", {"Motorcycle", "Vehicle"}),
        ("motor scooter", {"Motorcycle"}),
        ("missile", {"Rocket"}),
        ("reflex camera", {"Camera", "Electronics"}),
        ("Polaroid camera", {"Camera"}),
    ],
)
def test_fine_classes_reach_the_general_words(lemma: str, expected: set[str]) -> None:
    _, direct = CLASS_LABELS[CLASS_NAMES.index(lemma)]
    assert expected <= set(dict(ancestors(direct)))


def test_people_classes_do_not_claim_a_person() -> None:
    for lemma in ("groom", "ballplayer", "scuba diver"):
        own, direct = CLASS_LABELS[CLASS_NAMES.index(lemma)]
        assert "Person" not in {own, *dict(ancestors(direct))}


def test_a_general_label_collects_its_classes_and_leads_when_the_classes_split() -> None:
    labels = labels_from_probabilities(_one_hot(tabby=0.3, tiger_cat=0.3, Egyptian_cat=0.3, lynx=0.02))
    names = [label.name for label in labels]
    assert names[0] == "Cat"
    cat = labels[0]
    assert cat.confidence == pytest.approx(0.9)
    assert cat.parents[:2] == ("Mammal", "Pet")
    assert "Animal" in cat.parents
    assert {"Tabby", "Tiger Cat", "Egyptian Cat"} <= set(names)
    tabby = next(label for label in labels if label.name == "Tabby")
    assert tabby.parents[0] == "Cat"
    animal = next(label for label in labels if label.name == "Animal")
    assert animal.confidence == pytest.approx(0.92)


def test_a_sure_class_comes_before_its_parents() -> None:
    names = [label.name for label in labels_from_probabilities(_one_hot(espresso=0.9, cup=0.05))]
    assert names[:3] == ["Espresso", "Coffee", "Beverage"]


def test_thin_spread_probability_gives_no_label() -> None:
    assert labels_from_probabilities(np.full(1000, 1 / 1000)) == ()
    # Hundreds of animal classes at a fraction of a percent: "Animal" sums past the threshold
    # but no class is anywhere near sure, so nothing is said.
    p = np.full(1000, 0.0005)
    p[:398] = 0.6 / 398
    assert sum(p[:398]) > MIN_CONFIDENCE
    assert labels_from_probabilities(p / p.sum()) == ()


def test_detector_labels_and_classifier_labels_merge_by_confidence() -> None:
    person = DetectedObject("Person", 0.9, Box(0.1, 0.1, 0.5, 0.8))
    classified = (Label("Cat", 0.92), Label("Animal", 0.95), Label("Person", 0.5), Label("Pet", 0.3))
    merged = summarise_labels((person,), (), (), classified)
    assert [label.name for label in merged] == ["Cat", "Animal", "Person", "Pet"]
    assert next(label for label in merged if label.name == "Person").confidence == 0.9
