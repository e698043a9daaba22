"""face-api.js's AgeGenderNet in numpy: the layers against plain loops, the TF.js weights reader, the crop.

The network is only as right as its layers: TensorFlow's 'same' padding puts the odd extra row and
column after the image for stride 2, and a reader that shifted them would still give numbers, just
wrong ones. So each layer is checked against a direct loop over the same padding rule, on random
tensors of odd and even sizes. How well it guesses real faces is measured in tests/corpus.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.recognizers.local import age_gender
from core.recognizers.local.age_gender import (
    AgeGender,
    AgeGenderNet,
    age_range,
    conv2d,
    face_crop_box,
    load_weights,
    max_pool,
    model_input,
    separable_conv,
)
from core.recognizers.local.model_files import AGE_GENDER_MANIFEST, AGE_GENDER_WEIGHTS, ModelStore

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
    return out + b


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


@pytest.mark.parametrize(("size", "stride"), [(8, 2), (7, 2), (6, 1)])
def test_a_full_convolution_matches_the_loop(size: int, stride: int) -> None:
    x = RNG.normal(size=(size, size + 1, 3)).astype(np.float32)
    w = RNG.normal(size=(3, 3, 3, 5)).astype(np.float32)
    b = RNG.normal(size=5).astype(np.float32)
    np.testing.assert_allclose(conv2d(x, w, b, stride), _reference_conv(x, w, b, stride), atol=1e-4)


def test_a_strided_one_by_one_convolution_takes_every_other_pixel() -> None:
    x = RNG.normal(size=(8, 6, 4)).astype(np.float32)
    w = RNG.normal(size=(1, 1, 4, 2)).astype(np.float32)
    b = np.zeros(2, dtype=np.float32)
    np.testing.assert_allclose(conv2d(x, w, b, 2), _reference_conv(x, w, b, 2), atol=1e-4)


def test_a_separable_convolution_is_a_depthwise_then_a_pointwise_one() -> None:
    x = RNG.normal(size=(6, 5, 4)).astype(np.float32)
    depthwise = RNG.normal(size=(3, 3, 4, 1)).astype(np.float32)
    pointwise = RNG.normal(size=(1, 1, 4, 3)).astype(np.float32)
    bias = RNG.normal(size=3).astype(np.float32)
    expected = _reference_depthwise(x, depthwise) @ pointwise[0, 0] + bias
    np.testing.assert_allclose(separable_conv(x, depthwise, pointwise, bias), expected, atol=1e-4)


def test_max_pooling_pads_after_with_nothing_that_could_win() -> None:
    x = -np.abs(RNG.normal(size=(4, 4, 1))).astype(np.float32) - 1.0  # all negative: zero padding would win
    pooled = max_pool(x)
    assert pooled.shape == (2, 2, 1)
    assert pooled[0, 0, 0] == x[0:3, 0:3, 0].max()
    assert pooled[1, 1, 0] == x[2:4, 2:4, 0].max()  # the window's last row and column are padding


def _write_tfjs(folder: Path, tensors: dict[str, np.ndarray], quantised: set[str]) -> tuple[Path, Path]:
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
    manifest, weights = folder / "m.json", folder / "w.bin"
    manifest.write_text(json.dumps([{"paths": ["w.bin"], "weights": entries}]))
    weights.write_bytes(data)
    return manifest, weights


def test_the_weights_reader_dequantises_and_checks_the_length(tmp_path: Path) -> None:
    filters = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32)
    bias = RNG.normal(size=4).astype(np.float32)
    manifest, weights = _write_tfjs(tmp_path, {"a/filters": filters, "a/bias": bias}, {"a/filters"})
    read = load_weights(manifest, weights)
    np.testing.assert_array_equal(read["a/bias"], bias)
    step = (filters.max() - filters.min()) / 255
    np.testing.assert_allclose(read["a/filters"], filters, atol=step / 2 + 1e-6)
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="manifest describes"):
        load_weights(manifest, weights)


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


def test_the_shipped_weights_load_and_give_a_finite_estimate(local_store: ModelStore) -> None:
    tensors = load_weights(local_store.path(AGE_GENDER_MANIFEST), local_store.path(AGE_GENDER_WEIGHTS))
    assert tensors["fc/age/weights"].shape == (512, 1)
    net = AgeGenderNet(tensors)
    grey = np.full((112, 112, 3), 128, dtype=np.float32)
    estimate = net.predict(grey)
    assert 0 <= estimate.age < 120
    assert 0 <= estimate.male_probability <= 1
    assert net.predict(grey) == estimate  # deterministic
    with pytest.raises(ValueError, match="112"):
        net.predict(np.zeros((64, 64, 3), dtype=np.float32))
    assert age_gender._network(local_store) is age_gender._network(local_store)  # loaded once
