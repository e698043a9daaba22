"""The one model interface (`inference`): lazy hash-checked loading, one model per name, threads, no locks.

Stand-in runtimes (subclasses of `InferenceModel` over small files written here) test the
interface itself; the real runtimes are tested through their own options (ONNX Runtime's session
options, the LiteRT interpreter's constructor) on a tiny generated ONNX graph and an installed
LiteRT model.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import RecognizerUnavailable
from core.recognizers.local.inference import (
    InferenceModel,
    LiteRtModel,
    ModelRegistry,
    ModelSpec,
    OnnxModel,
)
from core.recognizers.local.model_files import EMOTION, ModelFile, WheelSource

WAIT_S = 20.0  # a barrier that times out means one call waited for the other (generous: loaded machine)


def _pinned(directory: Path, name: str, data: bytes) -> ModelFile:
    """A model file written to `directory` and pinned to its bytes, like the install step's."""
    (directory / name).write_bytes(data)
    source = WheelSource("test", "1.0", "test.whl", "0" * 64, "MIT")
    return ModelFile(name, source, name, hashlib.sha256(data).hexdigest(), len(data), "MIT", "test")


class _Counting(InferenceModel[bytes, int, int]):
    """A stand-in runtime: its state is the file's bytes; it counts loads and adds the input."""

    loads = 0

    def _load(self, paths: tuple[Path, ...]) -> bytes:
        type(self).loads += 1
        return paths[0].read_bytes()

    def _run(self, state: bytes, inputs: int) -> int:
        return len(state) + inputs


class _Meeting(InferenceModel[threading.Barrier, int, int]):
    """A slow stand-in: each call waits inside the model until a second call is inside it too."""

    def _load(self, paths: tuple[Path, ...]) -> threading.Barrier:
        return threading.Barrier(2, timeout=WAIT_S)

    def _run(self, state: threading.Barrier, inputs: int) -> int:
        state.wait()  # raises BrokenBarrierError if the other call never arrives while this one runs
        return inputs


def test_a_model_loads_on_first_use_once_even_when_many_threads_ask_at_once(tmp_path: Path) -> None:
    _Counting.loads = 0
    spec = ModelSpec("counting", (_pinned(tmp_path, "m.bin", b"abc"),), _Counting)
    models = ModelRegistry(tmp_path)
    model = models.get(spec)
    assert not model.loaded
    assert _Counting.loads == 0
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(model.predict(1))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [4] * 8
    assert _Counting.loads == 1
    assert models.get(spec) is model


def test_unload_lets_the_model_go_and_the_next_call_loads_and_checks_again(tmp_path: Path) -> None:
    _Counting.loads = 0
    file = _pinned(tmp_path, "m.bin", b"abc")
    model = ModelRegistry(tmp_path).get(ModelSpec("counting", (file,), _Counting))
    assert model.predict(0) == 3
    model.unload()
    assert not model.loaded
    (tmp_path / "m.bin").write_bytes(b"abd")  # altered while unloaded: the reload must notice
    with pytest.raises(RecognizerUnavailable, match="sha256"):
        model.predict(0)
    (tmp_path / "m.bin").write_bytes(b"abc")
    assert model.predict(0) == 3
    assert _Counting.loads == 2


def test_a_missing_file_says_how_to_install_and_is_not_remembered(tmp_path: Path) -> None:
    file = _pinned(tmp_path, "m.bin", b"abc")
    (tmp_path / "m.bin").unlink()
    models = ModelRegistry(tmp_path)
    model = models.get(ModelSpec("counting", (file,), _Counting))
    with pytest.raises(RecognizerUnavailable, match="install"):
        model.predict(0)
    assert not model.loaded
    (tmp_path / "m.bin").write_bytes(b"abc")  # the operator runs the install step: no restart needed
    assert model.predict(0) == 3


def test_one_name_is_one_model(tmp_path: Path) -> None:
    first = _pinned(tmp_path, "a.bin", b"a")
    second = _pinned(tmp_path, "b.bin", b"b")
    models = ModelRegistry(tmp_path)
    models.get(ModelSpec("model", (first,), _Counting))
    with pytest.raises(ValueError, match="model"):
        models.get(ModelSpec("model", (second,), _Counting))  # same name, other file
    with pytest.raises(ValueError, match="model"):
        models.get(ModelSpec("model", (first,), _Meeting))  # same name, other runtime
    assert len(models.models()) == 1


def test_two_calls_on_two_threads_run_inside_one_model_at_the_same_time(tmp_path: Path) -> None:
    model = ModelRegistry(tmp_path).get(ModelSpec("slow", (_pinned(tmp_path, "m.bin", b"x"),), _Meeting))
    results: list[int] = []
    errors: list[BaseException] = []

    def call(value: int) -> None:
        try:
            results.append(model.predict(value))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=call, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [1, 2]


def _tiny_onnx(directory: Path) -> ModelFile:
    """A one-node ONNX graph (y = x + 1) written deterministically."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return _pinned(directory, "tiny.onnx", model.SerializeToString())


def test_onnx_runtime_runs_with_the_threads_setting(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    model = ModelRegistry(tmp_path, threads=3).get(ModelSpec("tiny", (_tiny_onnx(tmp_path),), OnnxModel))
    (y,) = model.predict([np.zeros((1, 4), dtype=np.float32)])
    assert y.tolist() == [[1.0, 1.0, 1.0, 1.0]]
    options = model.load().session.get_session_options()
    assert options.intra_op_num_threads == 3
    assert options.inter_op_num_threads == 1


@pytest.fixture
def recorded_interpreters(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every LiteRT interpreter made from now on (the real class, recording how it was made)."""
    interpreter = pytest.importorskip("ai_edge_litert.interpreter")
    made: list[Any] = []

    base: Any = interpreter.Interpreter

    class Recording(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.num_threads = kwargs.get("num_threads")
            self.thread = threading.get_ident()
            made.append(self)

    monkeypatch.setattr(interpreter, "Interpreter", Recording)
    return made


def test_litert_gives_each_thread_its_own_interpreter_with_the_threads_setting(
    local_store: ModelRegistry, recorded_interpreters: list[Any]
) -> None:
    models = ModelRegistry(local_store.directory, threads=2)
    model = models.get(ModelSpec("fer-emotion", (EMOTION,), LiteRtModel))
    face = np.zeros((1, 64, 64, 1), dtype=np.float32)
    answers: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: answers.append(model.predict([face])[0])) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2
    assert np.array_equal(answers[0], answers[1])
    # one made by the load (on whichever thread loaded), one more for the other thread; none shared
    assert len(recorded_interpreters) == 2
    assert {i.thread for i in recorded_interpreters} == {t.ident for t in threads}
    assert all(i.num_threads == 2 for i in recorded_interpreters)


def test_the_text_reader_runs_its_sessions_with_the_threads_setting(local_store: ModelRegistry) -> None:
    from core.recognizers.local import LocalRecognizer
    from core.recognizers.local.ocr import READER

    recognizer = LocalRecognizer(models_dir=local_store.directory, threads=2)
    assert recognizer.models.options.threads == 2
    reader = recognizer.models.get(READER)
    from PIL import Image, ImageDraw

    sign = Image.new("RGB", (480, 120), "white")
    ImageDraw.Draw(sign).text((20, 20), "OPEN 9-17", fill="black", font_size=60)
    reader.predict(np.asarray(sign))  # RapidOCR builds its sessions on first use
    engine = reader.load()
    for part in (engine.text_det, engine.text_rec):
        assert part.session.session.get_session_options().intra_op_num_threads == 2
    recognizer.close()
    assert not reader.loaded  # closing lets the models go
