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

import contextlib
import logging
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ser.predictor import DEFAULT_MODEL, BasePredictor
from ser.spec import LITERT_FILE, ModelSpec, register_model_mel

logger = logging.getLogger(__name__)

RUNTIMES = ("litert", "keras")
ENGINES = ("compiled", "interpreter")  # How LiteRT runs the export (LiteRTRunner says why).
WEIGHT_CACHE = ":memory:"  # XNNPACK's weight cache in an anonymous memory file (no disk, no path).
MAX_BUCKET = 64  # Largest batch one interpreter runs (SER_MAX_BATCH_SIZE's default); more are split.
XNNPACK_FROM = 32  # The interpreter engine's smallest batch bucket on XNNPACK (LiteRTRunner says why).


class LiteRTRunner:
    """LiteRT on a model's export: float32 inputs (n, ...) → outputs (n, ...), thread-safe.

    A dynamic-batch model gets one compiled copy per batch size bucket (powers of two up to
    ``max_batch``, each made on first use), and a batch is zero-padded up to its bucket: resizing
    one copy to each batch the adaptive batcher forms cost ~5 ms per resize (the resize and the
    first call after it), more than the model itself at batch 8. A model exported with a fixed
    batch of 1 runs row by row.

    Two engines run a bucket (``engine``, else ``SER_LITERT_ENGINE``; `python -m
    loadtests.forward` measures them):

    - ``compiled`` (default): LiteRT's `CompiledModel` on its XNNPACK delegate with XNNPACK's
      weight cache. The export unrolls the LSTM, so every time step is its own node on the same
      weights; XNNPACK packs a node's weights for itself, and without the cache the nodes of one
      bucket held ~33 MB of packed copies of a 1 MB model — too much to stay in the CPU's caches,
      so XNNPACK ran batch 1 at half the speed of the built-in kernels. The cache packs each
      distinct weight once (0.3 MB). Measured here (`python -m loadtests.forward`, README): 1.6–2.5×
      the inputs/s of the interpreter's choice below at batch 1–16, the same at 64, ~15 MB more.
    - ``interpreter``: LiteRT's `Interpreter`, whose Python API offers no weight cache. Buckets
      below ``xnnpack_from`` run its built-in kernels, larger ones XNNPACK: without the cache
      XNNPACK is ~2× slower at batch 1 and ~2× faster at 32–64, and each XNNPACK bucket holds its
      own ~33 MB of packed weights, so only the buckets heavy load forms use it. The fallback when
      the compiled engine cannot start.
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
        engine: str | None = None,
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
        self.output_shape = tuple(int(d) for d in self._output["shape"][1:])
        self.max_batch = max_batch if self.dynamic else 1
        self._nominal_batch = int(self._input["shape"][0])  # What the file declares (1 if dynamic).
        self._buckets: dict[int, Callable[[np.ndarray], np.ndarray]] = {}
        self._lock = threading.Lock()
        self.engine = engine or engine_from_env()
        if self.engine == "compiled":
            try:
                self._environment = _compiled_environment()
                self._buckets[1] = self._compiled_bucket(1)
            except (ImportError, RuntimeError, ValueError) as e:
                logger.warning("LiteRT's compiled model did not start (%s); using its Interpreter", e)
                self.engine = "interpreter"
        if self.engine == "interpreter" and self._nominal_batch == 1:
            first.allocate_tensors()
            self._buckets[1] = self._interpreter_bucket(1, first)

    def _interpreter(self, size: int):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        resolver = OpResolverType.AUTO if size >= self.xnnpack_from else plain
        return Interpreter(**self._source, num_threads=self._threads, experimental_op_resolver_type=resolver)

    def _interpreter_bucket(self, size: int, interpreter=None) -> Callable[[np.ndarray], np.ndarray]:
        if interpreter is None:
            interpreter = self._interpreter(size)
            interpreter.resize_tensor_input(self._input["index"], [size, *self.input_shape])
            interpreter.allocate_tensors()
        inp, out = self._input["index"], self._output["index"]

        def run(x: np.ndarray) -> np.ndarray:
            interpreter.set_tensor(inp, x)
            interpreter.invoke()
            return interpreter.get_tensor(out)

        return run

    def _compiled_bucket(self, size: int) -> Callable[[np.ndarray], np.ndarray]:
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import Options
        from ai_edge_litert.tensor_buffer import TensorBuffer

        options = Options(
            hardware_accelerators=HardwareAccelerator.CPU,
            cpu_options=CpuOptions(num_threads=self._threads, xnnpack_weight_cache_path=WEIGHT_CACHE),
        )
        env = self._environment
        with _native_log_to_debug():
            if self.model_path is not None:
                model = CompiledModel.from_file(self.model_path, environment=env, options=options)
            else:
                content = self._source["model_content"]
                model = CompiledModel.from_buffer(content, environment=env, options=options)
            if size != self._nominal_batch:
                model.resize_input_tensor(0, [size, *self.input_shape])
            inputs = model.create_input_buffers(0)
            # Our own output buffer: LiteRT 2.3's `create_output_buffers` keeps the batch-1 shape
            # after `resize_input_tensor`, and a run into it fails for any larger batch.
            shape = (size, *self.output_shape)
            outputs = [TensorBuffer.create_from_host_memory(np.zeros(shape, np.float32))]
            count = math.prod(shape)

            def run(x: np.ndarray) -> np.ndarray:
                inputs[0].write(x)
                model.run_by_index(0, inputs, outputs)
                return outputs[0].read(count, np.float32).reshape(shape)

            run(np.zeros((size, *self.input_shape), np.float32))  # Its first run logs as well.
        return run

    def bucket(self, n: int) -> int:
        """The batch size ``n`` inputs run at: the next power of two, at most ``max_batch``."""
        return min(1 << max(n - 1, 0).bit_length(), self.max_batch)

    def _bucket_runner(self, size: int) -> Callable[[np.ndarray], np.ndarray]:
        run = self._buckets.get(size)
        if run is None:
            make = self._compiled_bucket if self.engine == "compiled" else self._interpreter_bucket
            run = self._buckets[size] = make(size)
        return run

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        n, size = len(x), self.bucket(len(x))
        if n < size:  # Zero rows are fully masked inputs: they cost time, not correctness.
            x = np.concatenate([x, np.zeros((size - n, *self.input_shape), np.float32)])
        return self._bucket_runner(size)(x)[:n].copy()

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        n = len(x)
        with self._lock:
            parts = [self._invoke(x[i : i + self.max_batch]) for i in range(0, n, self.max_batch)]
        return np.concatenate(parts) if parts else np.zeros((0, *self.output_shape), np.float32)


def _compiled_environment():
    """A LiteRT environment for CPU models: no vendor compiler plugin or NPU dispatch library.

    Left empty, LiteRT looks for them in its own package and would hand the model to the first it
    finds (its wheel carries OpenVINO's, which then fails to load without OpenVINO, once per
    model). Pointing both at a folder with no libraries (this package's own) keeps it on the CPU.
    """
    import ai_edge_litert
    from ai_edge_litert.environment import Environment, EnvironmentOptions

    none_here = str(Path(__file__).parent)
    options = EnvironmentOptions(
        runtime_path=str(Path(ai_edge_litert.__file__).parent),
        compiler_plugin_path=none_here,
        dispatch_library_path=none_here,
    )
    with _native_log_to_debug():
        return Environment.create(options=options)


NATIVE_LOG = re.compile(r"^(INFO|WARNING|ERROR|VERBOSE|DEBUG): |^\u2514 ")  # LiteRT's C++ logger.


@contextlib.contextmanager
def _native_log_to_debug():
    """Send what LiteRT's C++ runtime writes to stderr meanwhile to this module's debug log.

    Making an environment or a compiled model, it logs at INFO each accelerator it probes (GPU,
    NPU: ~20 lines per worker), and its Python API has no way to lower its level. Other lines
    written to stderr in that window (another thread's) are written back as they came.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            others = []
            for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
                if NATIVE_LOG.match(line):
                    logger.debug("litert: %s", line.rstrip())
                else:
                    others.append(line)
            if others:
                sys.stderr.write("".join(others))
                sys.stderr.flush()


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


def engine_from_env() -> str:
    from ser.settings import parse_choice

    return parse_choice("SER_LITERT_ENGINE", "compiled", ENGINES)


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
