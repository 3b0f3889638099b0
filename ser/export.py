"""Export a trained Keras model to LiteRT (needs TensorFlow: training time only).

The service runs the export (`ser.runtime.LiteRTPredictor`) with no TensorFlow in its image.
`export_model_files` writes, into a BentoML model's folder beside ``model.keras``:

- ``model.tflite``: the model converted with `TFLiteConverter.from_concrete_functions`, built-in
  ops only. `from_keras_model` fails on LSTMs (TensorListReserve needs a static element shape) and
  a while-loop LSTM converts with a fixed batch of 1 only, so the model is first rebuilt on the same
  weights with every RNN unrolled: the batch is then dynamic (~3× the clips/s of a batch-1 loop at
  batch 8, ~5× at 64). Keras 3.15's unrolled RNN misaligns ``zero_output_for_mask`` when it runs
  backwards (it zeroes outputs with the un-reversed mask), so the copy's backward layers keep it
  off: their padded steps come first and output zeros anyway, and the masked mean ignores them.
  The export is verified against Keras on zero-padded inputs; if the dynamic-batch export does not
  convert or does not match, a batch-1 export of the original model is tried; if that fails too,
  no file is written and the service falls back to Keras.
- ``mel_basis.npy``: librosa's mel filterbank for the model's features.

    python -m ser.export --model ser_lstm:latest    # re-export an older model as a new version
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from ser.features import FeatureConfig, mel_filterbank
from ser.spec import LITERT_FILE, MEL_FILE, MODEL_FILE, ModelSpec

logger = logging.getLogger(__name__)

TOLERANCE = 1e-4  # Largest difference in any probability between Keras and the export.
RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")


class ExportError(RuntimeError):
    pass


def probe_inputs(input_shape: tuple[int, int], n: int = 8, seed: int = 0) -> np.ndarray:
    """Standard-normal inputs with zero-padded tails of varied lengths (all-zero steps are masked)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *input_shape)).astype(np.float32)
    steps = input_shape[0]
    for i, length in enumerate(np.linspace(steps, 1, n).round().astype(int)):
        x[i, length:] = 0.0
    return x


def _unroll_config(node) -> None:
    """Set ``unroll=True`` on every RNN layer in a (nested) Keras config, in place."""
    if isinstance(node, dict):
        if node.get("class_name") in RNN_CLASSES and isinstance(node.get("config"), dict):
            node["config"]["unroll"] = True
        for v in node.values():
            _unroll_config(v)
    elif isinstance(node, list):
        for v in node:
            _unroll_config(v)


def unrolled_copy(model):
    """The same model and weights with its RNNs unrolled: converts to LiteRT with a dynamic batch."""
    import keras

    config = model.get_config()
    _unroll_config(config)
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    for layer in copy._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.RNN) and layer.go_backwards:
            layer.zero_output_for_mask = False  # See the module's docstring.
    return copy


def convert(model, input_shape: tuple[int, int], batch: int | None) -> bytes:
    """LiteRT flatbuffer of ``model`` for inputs (batch, *input_shape); batch None = dynamic."""
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([batch, *input_shape], tf.float32, name="features"))
    # Not `from_concrete_functions([concrete], model)`: with the model as its second argument
    # the converter "succeeds" but drops the weights (a tiny file that fails at invoke).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def _litert_outputs(content: bytes, x: np.ndarray, batch: int | None) -> np.ndarray:
    from ser.runtime import LiteRTRunner

    runner = LiteRTRunner(model_content=content, dynamic=batch is None)
    return runner.run(x)


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def export_litert(model, input_shape: tuple[int, int], path: Path) -> dict:
    """Write ``model``'s LiteRT export to ``path``; returns what to record in the model's metadata."""
    x = probe_inputs(input_shape)
    expected = np.asarray(model(x, training=False))
    failures = []
    for label, batch, source in (("dynamic", None, unrolled_copy), (1, 1, lambda m: m)):
        started = time.perf_counter()
        try:
            content = convert(source(model), input_shape, batch)
            diff = float(np.abs(_litert_outputs(content, x, batch) - expected).max())
        except Exception as e:  # The converter raises many kinds; any means "try the next".
            failures.append(f"batch {label}: {type(e).__name__}: {str(e)[:300]}")
            continue
        if not diff <= TOLERANCE:
            failures.append(f"batch {label}: max difference to Keras {diff:.2e} > {TOLERANCE:g}")
            continue
        path.write_bytes(content)
        seconds = time.perf_counter() - started
        logger.info(
            "LiteRT export (batch %s): %d bytes, max diff %.1e, %.1f s", label, len(content), diff, seconds
        )
        return {"format": "litert", "file": path.name, "batch": label, "max_abs_diff": diff}
    raise ExportError("no LiteRT export matched the Keras model: " + "; ".join(failures))


def write_mel(features: FeatureConfig, path: Path) -> None:
    """librosa's mel filterbank for ``features``, as float32 .npy (what the service registers)."""
    f = features
    np.save(path, mel_filterbank(f.sample_rate, f.n_fft, f.n_mels, f.fmin, f.fmax), allow_pickle=False)


def export_model_files(model, spec: ModelSpec, folder: Path) -> dict:
    """Write ``model.tflite`` and ``mel_basis.npy`` into ``folder``; returns the metadata's ``runtime``.

    A failed LiteRT export is logged and leaves no file (the service then falls back to Keras).
    """
    folder = Path(folder)
    write_mel(spec.features, folder / MEL_FILE)
    info = {
        "mel_file": MEL_FILE,
        "tensorflow": _version("tensorflow-cpu") or _version("tensorflow"),
        "keras": _version("keras"),
        "ai_edge_litert": _version("ai-edge-litert"),
    }
    try:
        info.update(export_litert(model, spec.features.input_shape, folder / LITERT_FILE))
    except ExportError as e:
        message = f"{e}; the model will be served with Keras/TensorFlow"
        logger.warning(message)
        print(f"warning: {message}")  # Training's output is read by people; the log may not be shown.
    return info


def reexport(tag: str) -> str:
    """A new version of model ``tag`` with the LiteRT export and mel filterbank; returns its tag."""
    import bentoml
    import keras

    ref = bentoml.models.get(tag)
    meta = dict(ref.info.metadata)
    spec = ModelSpec.from_metadata(meta)
    model = keras.models.load_model(ref.path_of(MODEL_FILE), compile=False, safe_mode=True)
    with bentoml.models.create(ref.tag.name, metadata=meta, labels=dict(ref.info.labels)) as new:
        shutil.copyfile(ref.path_of(MODEL_FILE), new.path_of(MODEL_FILE))
        runtime = export_model_files(model, spec, Path(new.path))
        new.info.metadata["runtime"] = runtime
    return str(new.tag)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(prog="python -m ser.export", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model tag in the BentoML store, e.g. ser_lstm:latest")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tag = reexport(args.model)
    print(f"saved: {tag}")
    return tag


if __name__ == "__main__":
    main()
