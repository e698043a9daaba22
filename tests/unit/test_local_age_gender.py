"""face-api.js's AgeGenderNet as an ONNX graph: its layers against plain loops, the TF.js weights reader,
the crop, and the shipped model.

The network is only as right as its layers: TensorFlow's 'same' padding puts the odd extra row and
column after the image for stride 2, and a graph that shifted them would still give numbers, just
wrong ones. So the graph builder's convolutions and pooling (`core.model_build.GraphBuilder`, run by
ONNX Runtime) are checked against a direct loop over the same padding rule, on random tensors of
odd and even sizes. That the whole graph computes what face-api.js computes is `tests/golden`'s
job (face-api.js' own answers on real crops); how well it guesses real faces is tests/corpus'.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from PIL import Image

from core.model_build import GraphBuilder, tensor
from core.model_build.age_gender import build, read_weights
from core.recognizers.local.age_gender import AgeGender, age_range, face_crop_box, model_input, predict
from core.recognizers.local.inference import ModelRegistry

RNG = np.random.default_rng(7)


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, out


def _reference_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """A direct loop over output pixels, as TensorFlow defines conv2d with padding='same'."""
    k = w.shape[0]
    (top, out_h), (left, out_w) = _same_pad(x.shape[0], k, stride), _same_pad(x.shape[1], k, stride)
    out = np.zeros((out_h, out_w, w.shape[3]), dtype=np.float64)
    for i in range(out_h):
        for j in range(out_w):
            for dy in range(k):
                for dx in range(k):
                    y, xx = i * stride + dy - top, j * stride + dx - left
                    if 0 <= y < x.shape[0] and 0 <= xx < x.shape[1]:
                        out[i, j] += x[y, xx] @ w[dy, dx]
    result: np.ndarray = out + b
    return result


def _reference_depthwise(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    k = w.shape[0]
    pad = (k - 1) // 2
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for dy in range(k):
                for dx in range(k):
                    y, xx = i + dy - pad, j + dx - pad
                    if 0 <= y < x.shape[0] and 0 <= xx < x.shape[1]:
                        out[i, j] += x[y, xx] * w[dy, dx, :, 0]
    return out


def _run_layer(add: Any, x: np.ndarray) -> np.ndarray:
    """One layer, added to a graph by `add(builder, input_name)`, run by ONNX Runtime on HWC `x`."""
    import onnxruntime  # type: ignore[import-untyped]

    g = GraphBuilder()
    g.node("Transpose", [add(g, g.node("Transpose", ["x"], perm=[0, 3, 1, 2]))], "y", perm=[0, 2, 3, 1])
    model = g.model_bytes("layer", [tensor("x", [1, *x.shape])], [tensor("y", [1, "h", "w", "c"])])
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"x": x[np.newaxis].astype(np.float32)})
    return np.asarray(out[0])


@pytest.mark.parametrize(
    ("size", "kernel", "stride"), [(8, 3, 2), (7, 3, 2), (6, 3, 1), (8, 1, 2), (7, 1, 2)]
)
def test_a_full_convolution_matches_the_loop(size: int, kernel: int, stride: int) -> None:
    x = RNG.normal(size=(size, size, 3)).astype(np.float32)
    w = RNG.normal(size=(kernel, kernel, 3, 4)).astype(np.float32)  # HWIO, as TF.js stores it
    b = RNG.normal(size=4).astype(np.float32)
    out = _run_layer(lambda g, name: g.conv(name, w.transpose(3, 2, 0, 1), b, stride=stride), x)
    np.testing.assert_allclose(out, _reference_conv(x, w, b, stride), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [6, 7])
def test_a_depthwise_convolution_matches_the_loop(size: int) -> None:
    x = RNG.normal(size=(size, size, 5)).astype(np.float32)
    w = RNG.normal(size=(3, 3, 5, 1)).astype(np.float32)  # TF.js depthwise_filter
    out = _run_layer(lambda g, name: g.conv(name, w.transpose(2, 3, 0, 1), None, group=5), x)
    np.testing.assert_allclose(out, _reference_depthwise(x, w), rtol=1e-4, atol=1e-4)


def test_max_pooling_pads_after_with_nothing_that_could_win() -> None:
    x = -np.abs(RNG.normal(size=(4, 4, 1))).astype(np.float32) - 1.0  # all negative: zero padding would win
    pooled = _run_layer(
        lambda g, name: g.node("MaxPool", [name], auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[2, 2]),
        x,
    )
    assert pooled.shape == (2, 2, 1)
    assert pooled[0, 0, 0] == x[0:3, 0:3, 0].max()
    assert pooled[1, 1, 0] == x[2:4, 2:4, 0].max()  # the window's last row and column are padding


def _write_tfjs(tensors: dict[str, np.ndarray], quantised: set[str]) -> tuple[bytes, bytes]:
    """A TF.js weights manifest and binary as the converter writes them (uint8: min + scale * q)."""
    entries, data = [], b""
    for name, values in tensors.items():
        entry: dict[str, object] = {"name": name, "shape": list(values.shape), "dtype": "float32"}
        if name in quantised:
            low, high = float(values.min()), float(values.max())
            scale = (high - low) / 255
            q = np.round((values - low) / scale).astype(np.uint8)
            entry["quantization"] = {"dtype": "uint8", "scale": scale, "min": low}
            data += q.tobytes()
        else:
            data += values.astype("<f4").tobytes()
        entries.append(entry)
    return json.dumps([{"paths": ["w.bin"], "weights": entries}]).encode(), data


def test_the_weights_reader_dequantises_and_checks_the_length() -> None:
    filters = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32)
    bias = RNG.normal(size=4).astype(np.float32)
    manifest, weights = _write_tfjs({"a/filters": filters, "a/bias": bias}, {"a/filters"})
    read = read_weights(manifest, weights)
    np.testing.assert_array_equal(read["a/bias"], bias)
    step = (filters.max() - filters.min()) / 255
    np.testing.assert_allclose(read["a/filters"], filters, atol=step / 2 + 1e-6)
    with pytest.raises(ValueError, match="manifest describes"):
        read_weights(manifest, weights + b"\0")


def _random_age_gender() -> dict[str, np.ndarray]:
    """Every tensor of face-api.js' AgeGenderNet, with its names and shapes and random values."""
    shapes: dict[str, tuple[int, ...]] = {
        "entry_flow/conv_in/filters": (3, 3, 3, 32),
        "entry_flow/conv_in/bias": (32,),
    }

    def separable(prefix: str, inputs: int, outputs: int) -> None:
        shapes[f"{prefix}/depthwise_filter"] = (3, 3, inputs, 1)
        shapes[f"{prefix}/pointwise_filter"] = (1, 1, inputs, outputs)
        shapes[f"{prefix}/bias"] = (outputs,)

    for prefix, inputs, outputs in [
        ("entry_flow/reduction_block_0", 32, 64),
        ("entry_flow/reduction_block_1", 64, 128),
        ("exit_flow/reduction_block", 128, 256),
    ]:
        separable(f"{prefix}/separable_conv0", inputs, outputs)
        separable(f"{prefix}/separable_conv1", outputs, outputs)
        shapes[f"{prefix}/expansion_conv/filters"] = (1, 1, inputs, outputs)
        shapes[f"{prefix}/expansion_conv/bias"] = (outputs,)
    for block in range(2):
        for index in range(3):
            separable(f"middle_flow/main_block_{block}/separable_conv{index}", 128, 128)
    separable("exit_flow/separable_conv", 256, 512)
    shapes |= {
        "fc/age/weights": (512, 1),
        "fc/age/bias": (1,),
        "fc/gender/weights": (512, 2),
        "fc/gender/bias": (2,),
    }
    rng = np.random.default_rng(5)
    return {name: (rng.standard_normal(shape) * 0.1).astype(np.float32) for name, shape in shapes.items()}


def test_the_graph_is_built_the_same_every_time_and_answers_an_age_and_two_probabilities() -> None:
    import onnxruntime

    tensors = _random_age_gender()
    manifest, weights = _write_tfjs(tensors, {n for n in tensors if not n.endswith("bias")})
    model = build(manifest, weights)
    assert build(manifest, weights) == model  # so its sha256 can be pinned
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    face = np.random.default_rng(6).uniform(0, 255, (1, 112, 112, 3)).astype(np.float32)
    age, gender = session.run(None, {"face": face})
    assert age.shape == (1, 1)
    assert np.isfinite(age).all()
    assert gender.shape == (1, 2)
    assert gender.sum() == pytest.approx(1.0, abs=1e-6)


def test_the_age_range_widens_with_age_and_never_goes_below_zero() -> None:
    assert age_range(2.0) == (0, 6)
    low, high = age_range(30.0)
    assert (low, high) == (25, 35)  # 30 +- 15% (4.5 years), rounded outwards
    old_low, old_high = age_range(70.0)
    assert old_high - old_low > high - low
    assert old_low <= 70 <= old_high


def test_gender_is_said_only_when_the_model_is_sure() -> None:
    assert AgeGender(30, 0.9).gender == "Male"
    assert AgeGender(30, 0.1).gender == "Female"
    assert AgeGender(30, 0.5).gender is None


def test_the_face_is_padded_to_a_centred_square_with_black() -> None:
    photo = Image.new("RGB", (400, 400), (200, 200, 200))
    face = model_input(photo, (100.0, 50.0, 200.0, 350.0))  # 100 wide, 300 tall
    assert face is not None
    assert face.shape == (112, 112, 3)
    assert face[56, 5].max() == 0  # the left margin is padding
    assert face[56, 56].min() == 200  # the middle is the photo
    assert model_input(photo, (10.0, 10.0, 14.0, 40.0)) is None  # too small to say anything


def test_the_crop_box_grows_the_points_box_by_a_fifth_inside_the_photo() -> None:
    points = np.array([[100.0, 100.0], [200.0, 300.0]])
    assert face_crop_box(points, 1000, 1000) == (90.0, 80.0, 210.0, 320.0)
    assert face_crop_box(points, 205, 1000)[2] == 205.0


def test_the_shipped_model_gives_a_finite_repeatable_estimate(local_store: ModelRegistry) -> None:
    grey = np.full((112, 112, 3), 128, dtype=np.float32)
    estimate = predict(grey, local_store)
    assert 0 <= estimate.age < 120
    assert 0 <= estimate.male_probability <= 1
    assert predict(grey, local_store) == estimate  # deterministic
    with pytest.raises(ValueError, match="112"):
        predict(np.zeros((64, 64, 3), dtype=np.float32), local_store)


def _tarball(path: Any, members: dict[str, bytes]) -> None:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_the_install_step_builds_the_graph_from_both_files_and_checks_every_hash(tmp_path: Any) -> None:
    """scripts/install_models.py on a generated npm tarball: the manifest and the weights are each
    hash checked, the built graph must hash to its pin, and a changed weights file is refused."""
    import hashlib
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import install_models  # type: ignore[import-not-found]

    from core.recognizers.local.model_files import Conversion, ModelFile, NpmSource

    tensors = _random_age_gender()
    manifest, weights = _write_tfjs(tensors, {n for n in tensors if not n.endswith("bias")})
    built = build(manifest, weights)

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def model(weights_pin: str) -> ModelFile:
        conversion = Conversion(
            sha(manifest), len(manifest), "face-api-age-gender-onnx", "test",
            extra_members=(("package/model/w.bin", weights_pin),),
        )  # fmt: skip
        return ModelFile(
            "age_gender.onnx",
            source,
            "package/model/m.json",
            sha(built),
            len(built),
            "MIT",
            "test",
            conversion,
        )

    tarball = tmp_path / "face-api-1.0.0.tgz"
    _tarball(
        tarball, {"package/model/m.json": manifest, "package/model/w.bin": weights, "package/LICENSE": b"MIT"}
    )
    source = NpmSource("face-api", "1.0.0", tarball.name, sha(tarball.read_bytes()), "MIT")
    target = tmp_path / "models"
    install_models._extract(tarball, [model(sha(weights))], source, target)
    assert (target / "age_gender.onnx").read_bytes() == built
    with pytest.raises(SystemExit, match=r"w\.bin"):
        install_models._extract(tarball, [model("0" * 64)], source, tmp_path / "other")
    assert not (tmp_path / "other" / "age_gender.onnx").exists()
