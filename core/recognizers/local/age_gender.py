"""Age and gender of a face, from face-api.js's AgeGenderNet run by numpy.

The network (Vincent Mühler's face-api.js, MIT; the weights ship in the `@vladmandic/face-api`
npm tarball, MIT, a maintained fork) is a small Xception: a 3x3 convolution, three reduction
blocks and two residual blocks of depthwise-separable convolutions, then two fully connected
heads on the pooled 512 features, one regressing the age in years, one the two gender logits.
It takes a 112 px face (padded to a square with black, as face-api.js does) and costs a few
milliseconds, so the weights are read from the TF.js files exactly as shipped (a JSON manifest
naming each tensor's shape and uint8 quantisation, and one binary file) instead of being
converted to another format. The code follows face-api.js's `TinyXception` and `AgeGenderNet`
layer for layer, on the layers EfficientNet uses too (`layers`: TensorFlow's 'same' padding, for
stride 2 on an even size the extra row and column at the end).

Rekognition answers an age range; a single regression says less, so the range is the estimate
plus or minus `AGE_MARGIN` years or `AGE_MARGIN_SHARE` of it, whichever is wider (the model's
error grows with age), and gender is given only when the model is at least `GENDER_MIN` sure.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from core.recognizers.local.inference import InferenceModel, ModelRegistry, ModelSpec
from core.recognizers.local.layers import depthwise, patches, pointwise, windows
from core.recognizers.local.model_files import AGE_GENDER_MANIFEST, AGE_GENDER_WEIGHTS

__all__ = ["AgeGender", "AgeGenderNet", "age_range", "estimate", "face_crop_box"]

INPUT_SIZE = 112
MEAN_RGB = np.array([122.782, 117.001, 104.298], dtype=np.float32)
MAIN_BLOCKS = 2
AGE_MARGIN = 4.0
AGE_MARGIN_SHARE = 0.15
GENDER_MIN = 0.6
BOX_PADDING = 0.2  # face-api.js pads the landmarks' box by a fifth of its size before cutting it out

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AgeGender:
    """One face's estimate: age in years, and the probability that the face is a man's."""

    age: float
    male_probability: float

    @property
    def gender(self) -> str | None:
        """Rekognition's words, or None when the model is not sure enough to say."""
        if self.male_probability >= GENDER_MIN:
            return "Male"
        if self.male_probability <= 1.0 - GENDER_MIN:
            return "Female"
        return None


def age_range(age: float) -> tuple[int, int]:
    """A Rekognition-like (low, high) range around a point estimate, never below 0."""
    margin = max(AGE_MARGIN, AGE_MARGIN_SHARE * age)
    return max(0, math.floor(age - margin)), max(1, math.ceil(age + margin))


def load_weights(manifest: Path, weights: Path) -> dict[str, Array]:
    """Every tensor of a TF.js weights file, dequantised (value = min + scale * byte)."""
    groups = json.loads(manifest.read_text(encoding="utf-8"))
    data = weights.read_bytes()
    tensors: dict[str, Array] = {}
    offset = 0
    for group in groups:
        for entry in group["weights"]:
            shape = tuple(int(n) for n in entry["shape"])
            count = int(np.prod(shape)) if shape else 1
            quantisation = entry.get("quantization")
            if quantisation is not None:
                if quantisation["dtype"] != "uint8":
                    raise ValueError(f"{entry['name']}: unsupported quantisation {quantisation['dtype']}")
                raw = np.frombuffer(data, dtype=np.uint8, count=count, offset=offset)
                values = raw.astype(np.float32) * np.float32(quantisation["scale"]) + np.float32(
                    quantisation["min"]
                )
                offset += count
            else:
                if entry.get("dtype", "float32") != "float32":
                    raise ValueError(f"{entry['name']}: unsupported dtype {entry.get('dtype')}")
                values = np.frombuffer(data, dtype="<f4", count=count, offset=offset).astype(np.float32)
                offset += 4 * count
            tensors[str(entry["name"])] = values.reshape(shape)
    if offset != len(data):
        raise ValueError(f"{weights.name}: the manifest describes {offset} bytes, the file has {len(data)}")
    return tensors


def conv2d(x: Array, filters: Array, bias: Array, stride: int) -> Array:
    """A full 'same' convolution (HWIO filters): a strided sample for 1x1, else im2col."""
    if filters.shape[0] == 1:
        return pointwise(np.ascontiguousarray(x[::stride, ::stride]), filters[0, 0], bias)
    return pointwise(patches(x, filters.shape[0], stride), filters.reshape(-1, filters.shape[-1]), bias)


def separable_conv(x: Array, depthwise_filter: Array, pointwise_filter: Array, bias: Array) -> Array:
    """A depthwise 3x3 (stride 1, 'same') then a pointwise 1x1 convolution, as tf.separableConv2d."""
    spread = depthwise(x, depthwise_filter[:, :, :, 0], np.zeros(x.shape[-1], dtype=np.float32), 1)
    return pointwise(spread, pointwise_filter[0, 0], bias)


def max_pool(x: Array, kernel: int = 3, stride: int = 2) -> Array:
    """TensorFlow's 'same' max pooling: the padding is -inf, so it can never be the maximum."""
    pooled: Array = np.maximum.reduce(windows(x, kernel, stride, value=-np.inf))
    return pooled


def _relu(x: Array) -> Array:
    return np.maximum(x, 0.0)


class AgeGenderNet:
    """face-api.js's AgeGenderNet (TinyXception with 2 main blocks, two heads) on numpy."""

    def __init__(self, tensors: dict[str, Array]) -> None:
        self._t = tensors

    @classmethod
    def from_files(cls, manifest: Path, weights: Path) -> AgeGenderNet:
        """The network from face-api.js's two files, read as shipped (no converted copy to drift)."""
        return cls(load_weights(manifest, weights))

    def _sep(self, x: Array, prefix: str) -> Array:
        t = self._t
        return separable_conv(
            x, t[f"{prefix}/depthwise_filter"], t[f"{prefix}/pointwise_filter"], t[f"{prefix}/bias"]
        )

    def _reduction(self, x: Array, prefix: str, activate_input: bool = True) -> Array:
        out = _relu(x) if activate_input else x
        out = self._sep(out, f"{prefix}/separable_conv0")
        out = self._sep(_relu(out), f"{prefix}/separable_conv1")
        out = max_pool(out)
        expansion = conv2d(
            x, self._t[f"{prefix}/expansion_conv/filters"], self._t[f"{prefix}/expansion_conv/bias"], 2
        )
        return out + expansion

    def _main(self, x: Array, prefix: str) -> Array:
        out = self._sep(_relu(x), f"{prefix}/separable_conv0")
        out = self._sep(_relu(out), f"{prefix}/separable_conv1")
        out = self._sep(_relu(out), f"{prefix}/separable_conv2")
        return out + x

    def predict(self, face: Array) -> AgeGender:
        """Age and gender of a (112, 112, 3) RGB face, values 0..255."""
        if face.shape != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"expected a ({INPUT_SIZE}, {INPUT_SIZE}, 3) face, got {face.shape}")
        t = self._t
        x = ((face.astype(np.float32) - MEAN_RGB) / 255.0).astype(np.float32)
        x = _relu(conv2d(x, t["entry_flow/conv_in/filters"], t["entry_flow/conv_in/bias"], 2))
        x = self._reduction(x, "entry_flow/reduction_block_0", activate_input=False)
        x = self._reduction(x, "entry_flow/reduction_block_1")
        for index in range(MAIN_BLOCKS):
            x = self._main(x, f"middle_flow/main_block_{index}")
        x = self._reduction(x, "exit_flow/reduction_block")
        x = _relu(self._sep(x, "exit_flow/separable_conv"))
        pooled = x.mean(axis=(0, 1))  # a 7x7 average pool over the 7x7 map
        age = float(pooled @ t["fc/age/weights"][:, 0] + t["fc/age/bias"][0])
        logits = pooled @ t["fc/gender/weights"] + t["fc/gender/bias"]
        shifted = np.exp(logits - logits.max())
        male = float(shifted[0] / shifted.sum())
        return AgeGender(age=max(age, 0.0), male_probability=male)


def face_crop_box(
    points: npt.NDArray[np.floating], width: int, height: int
) -> tuple[float, float, float, float]:
    """The pixel box face-api.js would cut out: the landmarks' box grown by `BOX_PADDING`, in the photo."""
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    pad_x, pad_y = (right - left) * BOX_PADDING / 2, (bottom - top) * BOX_PADDING / 2
    return (
        max(float(left - pad_x), 0.0),
        max(float(top - pad_y), 0.0),
        min(float(right + pad_x), float(width)),
        min(float(bottom + pad_y), float(height)),
    )


def model_input(image: Image.Image, box: tuple[float, float, float, float]) -> Array | None:
    """The face cut out, padded to a centred square with black and scaled to 112 px (face-api.js's way)."""
    x0, y0, x1, y1 = box
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = image.crop((round(x0), round(y0), round(x1), round(y1))).convert("RGB")
    side = max(crop.size)
    square = Image.new("RGB", (side, side))
    square.paste(crop, ((side - crop.width) // 2, (side - crop.height) // 2))
    scaled = square.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(scaled, dtype=np.float32)


class NumpyAgeGender(InferenceModel[AgeGenderNet, Array, AgeGender]):
    """AgeGenderNet in numpy behind the model interface (until its ONNX graph replaces it)."""

    def _load(self, paths: tuple[Path, ...]) -> AgeGenderNet:
        return AgeGenderNet.from_files(paths[0], paths[1])

    def _run(self, state: AgeGenderNet, inputs: Array) -> AgeGender:
        return state.predict(inputs)


AGE_GENDER_MODEL = ModelSpec("age-gender", (AGE_GENDER_MANIFEST, AGE_GENDER_WEIGHTS), NumpyAgeGender)


def _network(models: ModelRegistry) -> AgeGenderNet:
    return models.get(AGE_GENDER_MODEL).load()


def estimate(image: Image.Image, points: npt.NDArray[np.floating], models: ModelRegistry) -> AgeGender | None:
    """Age and gender for the face whose landmarks (pixels of `image`) are `points`; None if too small."""
    face = model_input(image, face_crop_box(points, *image.size))
    if face is None:
        return None
    return models.get(AGE_GENDER_MODEL).predict(face)
