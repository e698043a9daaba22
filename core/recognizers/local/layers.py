"""The convolution layers the numpy-run networks share (EfficientNet-Lite0, face-api.js's AgeGenderNet).

Both were trained in TensorFlow, so both pad like its "SAME" (for stride 2 the extra row and
column go at the bottom and right), and both run height x width x channels: a 1x1 convolution is
one matrix product, a depthwise convolution k*k multiply-adds of shifted slices, and a full kxk
convolution one matrix product over the stacked windows (im2col).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["depthwise", "patches", "pointwise", "same_padding", "windows"]

FloatArray = npt.NDArray[np.float32]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding (before, after) for one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def windows(x: FloatArray, kernel: int, stride: int, value: float = 0.0) -> list[FloatArray]:
    """The kernel*kernel shifted, strided views of `x` padded with `value` that a "SAME" window op
    combines, in (row, column) order."""
    height, width = x.shape[:2]
    top, bottom = same_padding(height, kernel, stride)
    left, right = same_padding(width, kernel, stride)
    padded = np.pad(x, ((top, bottom), (left, right), (0, 0)), constant_values=value)
    out_h, out_w = -(-height // stride), -(-width // stride)
    return [
        padded[row : row + stride * out_h : stride, col : col + stride * out_w : stride]
        for row in range(kernel)
        for col in range(kernel)
    ]


def patches(x: FloatArray, kernel: int, stride: int) -> FloatArray:
    """im2col: each output pixel's kxk window as one vector in (row, column, channel) order, the
    order an HWIO filter flattens to, so a full convolution is `pointwise(patches, filter, bias)`."""
    return np.concatenate(windows(x, kernel, stride), axis=2)


def depthwise(x: FloatArray, weight: FloatArray, bias: FloatArray, stride: int) -> FloatArray:
    """A depthwise kxk convolution on (H, W, C), weight (k, k, C), as k*k multiply-adds of shifted,
    strided slices into buffers allocated once (the classifier's hot path)."""
    height, width, channels = x.shape
    kernel = weight.shape[0]
    top, bottom = same_padding(height, kernel, stride)
    left, right = same_padding(width, kernel, stride)
    padded = np.zeros((height + top + bottom, width + left + right, channels), dtype=np.float32)
    padded[top : top + height, left : left + width] = x
    out_h, out_w = -(-height // stride), -(-width // stride)
    out = np.empty((out_h, out_w, channels), dtype=np.float32)
    out[...] = bias
    scratch = np.empty_like(out)
    for row in range(kernel):
        for col in range(kernel):
            window = padded[row : row + stride * out_h : stride, col : col + stride * out_w : stride]
            np.multiply(window, weight[row, col], out=scratch)
            out += scratch
    return out


def pointwise(x: FloatArray, weight: FloatArray, bias: FloatArray) -> FloatArray:
    """A 1x1 convolution on (H, W, C_in), weight (C_in, C_out): one matrix product."""
    height, width, _ = x.shape
    out: FloatArray = x.reshape(height * width, -1) @ weight
    out += bias
    return out.reshape(height, width, -1)
