"""Install-time builders of the embedded recognizer's model files (never imported at run time).

Kept out of `core.recognizers.local` because the running recognizer never needs them: they read a
pinned PyTorch checkpoint (`pth`, a restricted unpickler) and TF.js files and write ONNX graphs,
with the `onnx` package that the container's slimming step removes after the install.

ONNX graphs for the networks the recognizer runs itself, built at install time from pinned weights.

EfficientNet-Lite0 (a PyTorch checkpoint) and face-api.js's AgeGenderNet (TF.js files) ship in
no format ONNX Runtime reads, and no converter for them works without torch or TensorFlow. Both
are small, fixed architectures, so each is written out node by node with `onnx.helper`
(`efficientnet`, `age_gender`): the weights are read from the pinned files, rearranged (BatchNorm
folded into the convolution before it, TF.js' HWIO filters turned to ONNX's OIHW) and stored as
float32 initializers, and every convolution pads like TensorFlow's "SAME" (`SAME_UPPER`: for
stride 2 the extra row and column go at the end), which is how both were trained.

Only `scripts/install_models.py` imports this package (it needs the `onnx` package, which the
container's build stage installs and its slimming step removes); the recognizer loads the
resulting `.onnx` files through `inference.OnnxModel` like every other ONNX model. The bytes are
deterministic (fixed node names, opset, IR version and producer, protobuf's deterministic
serialisation), so their sha256 is pinned in `model_files` like a downloaded file's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["OPSET", "GraphBuilder"]

OPSET = 17
IR_VERSION = 8  # ONNX Runtime reads IR 3 to 10; an old one keeps the files readable by older runtimes
PRODUCER = "photodetective"


class GraphBuilder:
    """Collects nodes and float32 weights under numbered names, in call order, so a build is repeatable."""

    def __init__(self) -> None:
        self._nodes: list[onnx.NodeProto] = []
        self._weights: list[onnx.TensorProto] = []
        self._count = 0

    def weight(self, array: npt.NDArray[Any], label: str = "w") -> str:
        """A float32 initializer (the values are copied as they are; no rounding beyond float32)."""
        name = f"{label}_{len(self._weights)}"
        values = np.ascontiguousarray(array, dtype=np.float32)
        self._weights.append(numpy_helper.from_array(values, name))
        return name

    def node(self, op: str, inputs: Sequence[str], output: str = "", **attributes: Any) -> str:
        """Add one node; returns its output's name (`output`, or a numbered one)."""
        self._count += 1
        name = output or f"{op.lower()}_{self._count}"
        self._nodes.append(
            helper.make_node(op, list(inputs), [name], name=f"n{self._count}_{op}", **attributes)
        )
        return name

    def conv(
        self,
        x: str,
        weight: npt.NDArray[Any],
        bias: npt.NDArray[Any] | None,
        *,
        stride: int = 1,
        group: int = 1,
    ) -> str:
        """A convolution (OIHW weight) with TensorFlow's "SAME" padding."""
        inputs = [x, self.weight(weight)] + ([] if bias is None else [self.weight(bias, "b")])
        kernel = [int(weight.shape[2]), int(weight.shape[3])]
        return self.node(
            "Conv", inputs, auto_pad="SAME_UPPER", group=group, kernel_shape=kernel, strides=[stride, stride]
        )

    def relu6(self, x: str) -> str:
        low = self.weight(np.array(0.0), "zero")
        high = self.weight(np.array(6.0), "six")
        return self.node("Clip", [x, low, high])

    def model_bytes(
        self, name: str, inputs: Sequence[onnx.ValueInfoProto], outputs: Sequence[onnx.ValueInfoProto]
    ) -> bytes:
        """The checked model, serialised the same way every time."""
        graph = helper.make_graph(self._nodes, name, list(inputs), list(outputs), initializer=self._weights)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name=PRODUCER,
            producer_version="1",
            ir_version=IR_VERSION,
        )
        onnx.checker.check_model(model, full_check=True)
        data: bytes = model.SerializeToString(deterministic=True)
        return data


def tensor(name: str, shape: Sequence[int | str]) -> onnx.ValueInfoProto:
    """A float32 graph input or output; strings in `shape` are dimensions that vary."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
