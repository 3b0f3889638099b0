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
MAX_BUCKET = 64  # Largest batch one interpreter runs (SER_MAX_BATCH_SIZE's default); more are split.
XNNPACK_FROM = 32  # Smallest batch bucket run with the XNNPACK delegate (LiteRTRunner says why).


class LiteRTRunner:
    """LiteRT interpreters: float32 inputs (n, ...) → outputs (n, ...), thread-safe.

    A dynamic-batch model gets one interpreter per batch size bucket (powers of two up to
    ``max_batch``, each made on first use), and a batch is zero-padded up to its bucket: resizing
    one interpreter to each batch the adaptive batcher forms cost ~5 ms per resize (the resize
    and the first call after it), more than the model itself at batch 8. Buckets below
    ``xnnpack_from`` run LiteRT's built-in kernels, larger ones its XNNPACK delegate: on this
    unrolled LSTM XNNPACK is ~2× slower at batch 1 and ~2× faster at batch 32–64, but each
    XNNPACK interpreter packs its own copy of the weights (~30 MB; `make bench` found workers
    ~120 MB larger after load with it from batch 8), so only the buckets heavy load forms use it.
    `python -m loadtests.forward` measures all three choices. A model exported with a fixed
    batch of 1 runs row by row.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        model_content: bytes | None = None,
        dynamic: bool | None = None,
        threads: int = 1,
        max_batch: int = MAX_BUCKET,
        xnnpack_from: int = XNNPACK_FROM,
    ) -> None:
        self.model_path = None if model_path is None else str(model_path)
        self._source = {"model_path": self.model_path, "model_content": model_content}
        self._threads, self.xnnpack_from = threads, xnnpack_from
        first = self._interpreter(1)
        self._input = first.get_input_details()[0]
        self._output = first.get_output_details()[0]
        signature = self._input["shape_signature"]
        self.dynamic = bool(signature[0] == -1) if dynamic is None else dynamic
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])
        self.max_batch = max_batch if self.dynamic else 1
        self._buckets: dict[int, object] = {}
        if not self.dynamic or int(self._input["shape"][0]) == 1:
            first.allocate_tensors()
            self._buckets[1] = first
        self._lock = threading.Lock()

    def _interpreter(self, size: int):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        resolver = OpResolverType.AUTO if size >= self.xnnpack_from else plain
        return Interpreter(**self._source, num_threads=self._threads, experimental_op_resolver_type=resolver)

    def bucket(self, n: int) -> int:
        """The batch size ``n`` inputs run at: the next power of two, at most ``max_batch``."""
        return min(1 << max(n - 1, 0).bit_length(), self.max_batch)

    def _bucket_interpreter(self, size: int):
        interpreter = self._buckets.get(size)
        if interpreter is None:
            interpreter = self._interpreter(size)
            interpreter.resize_tensor_input(self._input["index"], [size, *self.input_shape])
            interpreter.allocate_tensors()
            self._buckets[size] = interpreter
        return interpreter

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        n, size = len(x), self.bucket(len(x))
        if n < size:  # Zero rows are fully masked inputs: they cost time, not correctness.
            x = np.concatenate([x, np.zeros((size - n, *self.input_shape), np.float32)])
        interpreter = self._bucket_interpreter(size)
        interpreter.set_tensor(self._input["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(self._output["index"])[:n].copy()

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        n = len(x)
        with self._lock:
            parts = [self._invoke(x[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
        return np.concatenate(parts) if parts else np.zeros((0, *self._output["shape"][1:]), np.float32)


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
    from ser.settings import parse_choice

    return parse_choice("SER_RUNTIME", "litert", RUNTIMES)


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
