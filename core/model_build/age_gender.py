"""face-api.js's AgeGenderNet as an ONNX graph, from the TF.js files in the pinned npm tarball.

The network (Vincent Mühler's face-api.js, MIT; the weights ship in `@vladmandic/face-api`, MIT,
a maintained fork) is a small Xception, built here layer for layer after face-api.js's
`TinyXception` (2 main blocks) and `AgeGenderNet`: a 3x3 stride-2 convolution and ReLU, three
reduction blocks (two depthwise-separable convolutions, a 3x3 stride-2 max pool, plus a 1x1
stride-2 "expansion" convolution of the block's input), two residual blocks of three separable
convolutions, a last separable convolution and ReLU, a 7x7 average pool, then two linear heads:
the age in years and the two gender logits (softmax, male first).

The weights are read from the manifest (each tensor's name, shape and uint8 quantisation) and
the binary file exactly as face-api.js reads them (value = min + scale * byte, in float32), and
TF.js' HWIO filters become ONNX's OIHW. The graph takes `face` (1, 112, 112, 3), RGB 0..255,
and does face-api.js' normalisation itself ((x - mean RGB) / 255); it answers `age` (1, 1) and
`gender` (1, 2) probabilities. `scripts/faceapi_goldens.cjs` records what face-api.js itself
answers on real crops, and `tests/golden` holds this graph to it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt

from core.model_build import GraphBuilder, tensor

__all__ = ["build", "read_weights"]

INPUT_SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
MAIN_BLOCKS = 2

Array = npt.NDArray[np.float32]


def read_weights(manifest: bytes, weights: bytes) -> dict[str, Array]:
    """Every tensor of a TF.js weights file, dequantised (value = min + scale * byte, float32)."""
    tensors: dict[str, Array] = {}
    offset = 0
    for group in json.loads(manifest.decode("utf-8")):
        for entry in group["weights"]:
            shape = tuple(int(n) for n in entry["shape"])
            count = int(np.prod(shape)) if shape else 1
            quantisation = entry.get("quantization")
            if quantisation is not None:
                if quantisation["dtype"] != "uint8":
                    raise ValueError(f"{entry['name']}: unsupported quantisation {quantisation['dtype']}")
                raw = np.frombuffer(weights, dtype=np.uint8, count=count, offset=offset)
                scale, low = np.float32(quantisation["scale"]), np.float32(quantisation["min"])
                values = raw.astype(np.float32) * scale + low
                offset += count
            else:
                if entry.get("dtype", "float32") != "float32":
                    raise ValueError(f"{entry['name']}: unsupported dtype {entry.get('dtype')}")
                values = np.frombuffer(weights, dtype="<f4", count=count, offset=offset).astype(np.float32)
                offset += 4 * count
            tensors[str(entry["name"])] = values.reshape(shape)
    if offset != len(weights):
        raise ValueError(f"the manifest describes {offset} bytes, the weights file has {len(weights)}")
    return tensors


class _Net:
    """Adds face-api.js' layers to a graph, reading each layer's tensors by its TF.js name."""

    def __init__(self, tensors: dict[str, Array]) -> None:
        self.t = tensors
        self.g = GraphBuilder()

    def conv(self, x: str, prefix: str, stride: int) -> str:
        """A full convolution: HWIO filters -> OIHW."""
        filters = self.t[f"{prefix}/filters"]
        return self.g.conv(x, filters.transpose(3, 2, 0, 1), self.t[f"{prefix}/bias"], stride=stride)

    def separable(self, x: str, prefix: str) -> str:
        """tf.separableConv2d: a depthwise 3x3 (no bias) then a pointwise 1x1 with the bias."""
        depthwise = self.t[f"{prefix}/depthwise_filter"]  # (3, 3, C, 1)
        pointwise = self.t[f"{prefix}/pointwise_filter"]  # (1, 1, C, O)
        channels = depthwise.shape[2]
        spread = self.g.conv(x, depthwise.transpose(2, 3, 0, 1), None, group=channels)
        return self.g.conv(spread, pointwise.transpose(3, 2, 0, 1), self.t[f"{prefix}/bias"])

    def relu(self, x: str) -> str:
        return self.g.node("Relu", [x])

    def reduction(self, x: str, prefix: str, activate_input: bool = True) -> str:
        out = self.relu(x) if activate_input else x
        out = self.separable(out, f"{prefix}/separable_conv0")
        out = self.separable(self.relu(out), f"{prefix}/separable_conv1")
        out = self.g.node("MaxPool", [out], auto_pad="SAME_UPPER", kernel_shape=[3, 3], strides=[2, 2])
        return self.g.node("Add", [out, self.conv(x, f"{prefix}/expansion_conv", 2)])

    def main(self, x: str, prefix: str) -> str:
        out = x
        for index in range(3):
            out = self.separable(self.relu(out), f"{prefix}/separable_conv{index}")
        return self.g.node("Add", [out, x])

    def head(self, x: str, prefix: str, output: str) -> str:
        weights: Any = self.t[f"{prefix}/weights"]
        return self.g.node(
            "Gemm", [x, self.g.weight(weights), self.g.weight(self.t[f"{prefix}/bias"])], output
        )


def build(manifest: bytes, weights: bytes) -> bytes:
    """The ONNX model's bytes for face-api.js' two files (deterministic)."""
    net = _Net(read_weights(manifest, weights))
    g = net.g
    mean = g.weight(np.array(MEAN_RGB, dtype=np.float32).reshape(1, 1, 1, 3), "mean")
    scale = g.weight(np.array(255.0), "scale")
    x = g.node("Div", [g.node("Sub", ["face", mean]), scale])
    x = g.node("Transpose", [x], perm=[0, 3, 1, 2])
    x = net.relu(net.conv(x, "entry_flow/conv_in", 2))
    x = net.reduction(x, "entry_flow/reduction_block_0", activate_input=False)
    x = net.reduction(x, "entry_flow/reduction_block_1")
    for index in range(MAIN_BLOCKS):
        x = net.main(x, f"middle_flow/main_block_{index}")
    x = net.reduction(x, "exit_flow/reduction_block")
    x = net.relu(net.separable(x, "exit_flow/separable_conv"))
    pooled = g.node("Flatten", [g.node("GlobalAveragePool", [x])])
    net.head(pooled, "fc/age", "age")
    g.node("Softmax", [net.head(pooled, "fc/gender", "")], "gender", axis=1)
    return g.model_bytes(
        "face-api-age-gender",
        [tensor("face", [1, INPUT_SIZE, INPUT_SIZE, 3])],
        [tensor("age", [1, 1]), tensor("gender", [1, 2])],
    )
