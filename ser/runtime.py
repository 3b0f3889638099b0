"""Serving without TensorFlow: the model's LiteRT export under `ai_edge_litert`'s interpreter.

`load_predictor` picks the runtime for a stored model (``SER_RUNTIME``):

- ``litert`` (default): `LiteRTPredictor` on ``model.tflite`` (written by `ser.export` at training
  time, with Keras's outputs matched within 1e-4). A model stored without it (trained before the
  export existed) falls back to Keras with a warning; `python -m ser.export --model TAG` re-exports.
- ``keras``: `ser.predictor.Predictor`, the Keras model under TensorFlow.

Either way the mel filterbank stored with the model is registered, so features need no librosa.
Importing this module imports neither TensorFlow nor the interpreter.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from ser.predictor import DEFAULT_MODEL, BasePredictor
from ser.spec import LITERT_FILE, ModelSpec, register_model_mel

logger = logging.getLogger(__name__)

RUNTIMES = ("litert", "keras")


class LiteRTRunner:
    """One LiteRT interpreter: float32 inputs (n, ...) → outputs (n, ...), thread-safe.

    With a dynamic batch the input is resized only when the batch size changes (~0.8 ms);
    a model exported with a fixed batch of 1 runs row by row.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        model_content: bytes | None = None,
        dynamic: bool | None = None,
        threads: int = 1,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(
            model_path=None if model_path is None else str(model_path),
            model_content=model_content,
            num_threads=threads,
        )
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        signature = self._input["shape_signature"]
        self.dynamic = bool(signature[0] == -1) if dynamic is None else dynamic
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])
        self._batch = int(self._input["shape"][0])
        self._interpreter.allocate_tensors()
        self._lock = threading.Lock()

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], [len(x), *self.input_shape])
            self._interpreter.allocate_tensors()
            self._batch = len(x)
        self._interpreter.set_tensor(self._input["index"], x)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output["index"]).copy()

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        with self._lock:
            if self.dynamic:
                return self._invoke(x)
            return np.concatenate([self._invoke(x[i : i + 1]) for i in range(len(x))])


class LiteRTPredictor(BasePredictor):
    """The stored model's LiteRT export; same ``forward(x) -> probs`` as `ser.predictor.Predictor`."""

    runtime = "litert"

    def __init__(self, path: str | os.PathLike, spec: ModelSpec, tag: str = "", *, threads: int = 1):
        self.spec = spec
        self.tag = tag
        self.runner = LiteRTRunner(path, threads=threads)
        if self.runner.input_shape != tuple(spec.features.input_shape):
            raise ValueError(
                f"{path}: input shape {self.runner.input_shape}, the spec says {spec.features.input_shape}"
            )

    @classmethod
    def from_ref(cls, ref, *, threads: int | None = None) -> LiteRTPredictor:
        spec = ModelSpec.from_metadata(dict(ref.info.metadata))
        register_model_mel(ref, spec)
        path = ref.path_of(spec.runtime.get("file", LITERT_FILE))
        return cls(path, spec, str(ref.tag), threads=threads or _threads())

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self.runner.run(x)


def _threads() -> int:
    return int(os.environ.get("SER_TF_THREADS", "1"))


def runtime_from_env() -> str:
    runtime = os.environ.get("SER_RUNTIME", "litert").strip().lower() or "litert"
    if runtime not in RUNTIMES:
        raise ValueError(f"SER_RUNTIME={runtime!r}; allowed: {', '.join(RUNTIMES)}")
    return runtime


def has_litert(ref) -> bool:
    spec = ModelSpec.from_metadata(dict(ref.info.metadata))
    file = spec.runtime.get("file")
    return bool(file) and Path(ref.path_of(file)).is_file()


def load_predictor(ref, runtime: str | None = None, *, threads: int | None = None) -> BasePredictor:
    """The predictor for a stored model (a BentoML model or `BentoModel`) on ``runtime``.

    ``runtime`` None reads ``SER_RUNTIME`` (default ``litert``).
    """
    runtime = runtime or runtime_from_env()
    if runtime == "litert":
        if has_litert(ref):
            predictor = LiteRTPredictor.from_ref(ref, threads=threads)
            logger.info(
                "model %s: serving its LiteRT export (%s)", ref.tag, predictor.spec.runtime.get("file")
            )
            return predictor
        logger.warning(
            "model %s has no LiteRT export: falling back to Keras/TensorFlow (slow to start). "
            "Re-export it with `python -m ser.export --model %s`.",
            ref.tag,
            ref.tag,
        )
    try:
        from ser.predictor import Predictor

        return Predictor.from_ref(ref, threads=threads)
    except ImportError as e:
        why = "SER_RUNTIME=keras" if runtime == "keras" else "no LiteRT export"
        raise RuntimeError(
            f"model {ref.tag} needs Keras/TensorFlow ({why}), which is not installed here ({e}). "
            f"Serve a model with a LiteRT export (`python -m ser.export --model {ref.tag}`), "
            "or build the TensorFlow image (`make image RUNTIME=keras`)."
        ) from e


def load(tag: str = DEFAULT_MODEL, runtime: str | None = None) -> BasePredictor:
    """`load_predictor` for a tag in the BentoML model store (honours ``BENTOML_HOME``)."""
    import bentoml

    return load_predictor(bentoml.models.get(tag), runtime)
