"""The one model interface of the embedded recognizer: every network is an `InferenceModel`.

As in Immich's machine-learning service, a model is a named thing with its pinned files. Nothing
happens when it is made; `load()` checks the files' sha256 and builds the runtime once, under the
model's own lock (two first photos do not load it twice, and loading one model never waits for
another); `predict()` is safe to call from several threads at once; `unload()` lets the memory go
(the next `predict()` loads again). A file that is missing or altered raises
`RecognizerUnavailable` with the install hint, and the failure is not kept: fixing the files
needs no restart.

Task modules never build models themselves: they name a `ModelSpec` (name, files, runtime) and
ask the `ModelRegistry` for it, so each model exists once per registry, keyed by its name. Two
specs with one name but different files or runtimes are a programming error, reported at once
instead of one silently answering for the other.

The runtimes differ in how they share work between threads:

- ONNX Runtime (`OnnxModel`): one session, because `InferenceSession.run` is thread-safe;
  `threads` is its `intra_op_num_threads`.
- LiteRT (`LiteRtModel`): an interpreter holds its tensors between `set_tensor` and
  `get_tensor`, so it is not thread-safe; rather than one lock (two photos would queue on every
  model), each worker thread gets its own interpreter on first use (`threading.local`), with
  `threads` as its `num_threads`. A LiteRT model is a few MB, so an interpreter per thread of a
  small pool costs little.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from core.errors import RecognizerUnavailable
from core.recognizers.local.model_files import INSTALL_HINT, ModelFile, default_models_dir, sha256_of

__all__ = ["InferenceModel", "LiteRtModel", "ModelRegistry", "ModelSpec", "OnnxModel", "RuntimeOptions"]

Tensors = Sequence[npt.NDArray[Any]]
StateT = TypeVar("StateT")
InT = TypeVar("InT")
OutT = TypeVar("OutT")


@dataclass(frozen=True)
class RuntimeOptions:
    """Where the model files are and how many CPU threads one model run may use."""

    directory: Path
    threads: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError("threads must be at least 1")


def _verified_paths(directory: Path, files: Sequence[ModelFile]) -> tuple[Path, ...]:
    """The paths of `files` in `directory`, each checked against its pinned sha256.

    Checked on every load (not remembered), so a model unloaded and loaded again is checked again.
    """
    paths = []
    for model in files:
        path = directory / model.name
        if not path.is_file():
            raise RecognizerUnavailable(
                f"The local recognizer's model {model.name} is not installed in {directory}. {INSTALL_HINT}"
            )
        if sha256_of(path) != model.sha256:
            raise RecognizerUnavailable(
                f"The local recognizer's model {path} does not have the expected sha256 "
                f"(damaged or replaced). {INSTALL_HINT}"
            )
        paths.append(path)
    return tuple(paths)


class InferenceModel(ABC, Generic[StateT, InT, OutT]):
    """A named model with pinned files: lazy `load()`, thread-safe `predict()`, `unload()`.

    A runtime subclass says how its files become a ready state (`_load`, called once under the
    lock) and how one input is run on that state (`_run`, called from any thread, so it must not
    keep per-call data on `self`). The state is read once per call, so an `unload()` during a
    `predict()` lets that call finish on the state it started with.
    """

    def __init__(self, name: str, files: tuple[ModelFile, ...], options: RuntimeOptions) -> None:
        if not files:
            raise ValueError(f"model {name} names no files")
        self.name = name
        self.files = files
        self.options = options
        self._lock = threading.Lock()
        self._state: StateT | None = None

    @property
    def loaded(self) -> bool:
        return self._state is not None

    def load(self) -> StateT:
        """Check the files and build the runtime, once; later calls return the same state."""
        state = self._state
        if state is not None:
            return state
        with self._lock:
            if self._state is None:
                self._state = self._load(_verified_paths(self.options.directory, self.files))
            return self._state

    def predict(self, inputs: InT) -> OutT:
        """Run the model on one input, loading it first if needed; safe from several threads."""
        return self._run(self.load(), inputs)

    def unload(self) -> None:
        """Drop the runtime (its memory goes once no call still uses it); the next predict reloads."""
        with self._lock:
            self._state = None

    @abstractmethod
    def _load(self, paths: tuple[Path, ...]) -> StateT:
        """Build the runtime state from the verified paths (in the order of `files`)."""

    @abstractmethod
    def _run(self, state: StateT, inputs: InT) -> OutT:
        """Run one input on a loaded state; called from several threads at once."""


ModelT = TypeVar("ModelT", bound=InferenceModel[Any, Any, Any])


@dataclass(frozen=True)
class ModelSpec(Generic[ModelT]):
    """What a task module needs: a model's name, its pinned files and the runtime that runs them."""

    name: str
    files: tuple[ModelFile, ...]
    runtime: type[ModelT]


class ModelRegistry:
    """Every model of one recognizer, made on first request and kept by name.

    Asking twice for a spec returns the same model. Asking for a spec whose name is taken by
    another spec (other files or runtime) raises `ValueError`: a name means one model.
    """

    def __init__(self, directory: Path | None = None, threads: int = 1) -> None:
        self.options = RuntimeOptions(directory if directory is not None else default_models_dir(), threads)
        self._lock = threading.Lock()
        self._models: dict[str, tuple[ModelSpec[Any], InferenceModel[Any, Any, Any]]] = {}

    @property
    def directory(self) -> Path:
        return self.options.directory

    def get(self, spec: ModelSpec[ModelT]) -> ModelT:
        """The model for `spec` (not loaded until its first `predict` or `load`)."""
        with self._lock:
            known = self._models.get(spec.name)
            if known is None:
                model = spec.runtime(spec.name, spec.files, self.options)
                self._models[spec.name] = (spec, model)
                return model
            if known[0] != spec:
                raise ValueError(f"two different models are named {spec.name!r}")
            found: ModelT = known[1]  # type: ignore[assignment]  # same spec, so same runtime type
            return found

    def models(self) -> tuple[InferenceModel[Any, Any, Any], ...]:
        with self._lock:
            return tuple(model for _, model in self._models.values())

    def unload_all(self) -> None:
        """Unload every model (the recognizer's close, or an operator freeing memory while idle)."""
        for model in self.models():
            model.unload()


@dataclass(frozen=True)
class _OrtState:
    session: Any
    inputs: tuple[str, ...]


class OnnxModel(InferenceModel[_OrtState, Tensors, list[npt.NDArray[Any]]]):
    """An ONNX Runtime session shared by every thread (`run` is thread-safe).

    `predict` takes the model's inputs in its declared order, batch axis included, and returns
    every output in order.
    """

    def _load(self, paths: tuple[Path, ...]) -> _OrtState:
        import onnxruntime  # type: ignore[import-untyped]  # imported late: only this backend needs it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.options.threads
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False  # per-run buffers go back to the heap, and then to the system
        session = onnxruntime.InferenceSession(str(paths[0]), options, providers=["CPUExecutionProvider"])
        return _OrtState(session, tuple(i.name for i in session.get_inputs()))

    def _run(self, state: _OrtState, inputs: Tensors) -> list[npt.NDArray[Any]]:
        if len(inputs) != len(state.inputs):
            raise ValueError(f"model {self.name} takes {len(state.inputs)} inputs, not {len(inputs)}")
        return list(state.session.run(None, dict(zip(state.inputs, inputs, strict=True))))


class _Interpreters:
    """One LiteRT interpreter per thread, all of the same file, made on each thread's first call."""

    def __init__(self, path: Path, threads: int) -> None:
        self.path = path
        self.threads = threads
        self._local = threading.local()
        self.current()  # the first one now: a file LiteRT cannot read fails the load, not a later call

    def current(self) -> tuple[Any, list[int], list[int]]:
        made: tuple[Any, list[int], list[int]] | None = getattr(self._local, "interpreter", None)
        if made is None:
            from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped]  # only this backend needs it

            interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
            interpreter.allocate_tensors()
            made = (
                interpreter,
                [d["index"] for d in interpreter.get_input_details()],
                [d["index"] for d in interpreter.get_output_details()],
            )
            self._local.interpreter = made
        return made


class LiteRtModel(InferenceModel[_Interpreters, Tensors, list[npt.NDArray[Any]]]):
    """A LiteRT (TensorFlow Lite) model with one interpreter per calling thread, and no lock.

    `predict` takes the inputs in the model's order, batch axis included and in the model's dtype,
    and returns copies of every output (an interpreter reuses its output buffers).
    """

    def _load(self, paths: tuple[Path, ...]) -> _Interpreters:
        return _Interpreters(paths[0], self.options.threads)

    def _run(self, state: _Interpreters, inputs: Tensors) -> list[npt.NDArray[Any]]:
        interpreter, input_indices, output_indices = state.current()
        if len(inputs) != len(input_indices):
            raise ValueError(f"model {self.name} takes {len(input_indices)} inputs, not {len(inputs)}")
        for index, array in zip(input_indices, inputs, strict=True):
            interpreter.set_tensor(index, np.ascontiguousarray(array))
        interpreter.invoke()
        return [np.array(interpreter.get_tensor(index)) for index in output_indices]
