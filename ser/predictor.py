"""The one inference entry point: audio → per-emotion probabilities, batched.

Evaluation, the service and the demo all go through a predictor: `Predictor` runs the Keras
model (TensorFlow), `ser.runtime.LiteRTPredictor` the LiteRT export stored beside it (no
TensorFlow; what the service uses by default). Both share `BasePredictor`'s audio → result steps
and differ only in ``forward``. Here the forward pass is a `tf.function` with a fixed input
signature (any batch size, fixed frame count), traced once; `model.predict` is never used per
request (it costs ~150 ms of set-up per call).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ser.audio import AudioLimits, load_audio
from ser.pipeline import Inputs, clip_copies, clip_inputs
from ser.spec import MODEL_FILE, ModelSpec, register_model_mel

DEFAULT_MODEL = "ser_lstm:latest"
MAX_BATCH = 64  # Largest batch one forward call runs; bigger inputs are chunked.


@dataclass
class ClipPrediction:
    emotion: str
    confidence: float
    probabilities: dict[str, float]
    duration_s: float

    def to_dict(self) -> dict:
        return {
            "emotion": self.emotion,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
            "duration_s": self.duration_s,
        }


def combine_segments(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of segment probabilities (n, c) weighted by segment length (n,) → (c,)."""
    w = np.asarray(weights, np.float64)
    return ((probs * w[:, None]).sum(axis=0) / w.sum()).astype(np.float32)


def prepare(spec: ModelSpec, inputs: Inputs) -> np.ndarray:
    """Standardise with the training set's statistics; shape (n, *input_shape)."""
    return spec.norm.apply(inputs.x, inputs.lengths)


def clip_result(spec: ModelSpec, probs: np.ndarray, inputs: Inputs | list[Inputs]) -> ClipPrediction:
    """One clip's prediction from its segments' probabilities (n, n_labels).

    With a list of copies (`ser.pipeline.clip_copies`: the recording, then speed copies) ``probs``
    holds their segments in that order, and the prediction is the mean of the copies' clip
    probabilities, as `training.evaluate --tta` measures it.
    """
    copies = inputs if isinstance(inputs, list) else [inputs]
    parts, start = [], 0
    for c in copies:
        n = len(c.x)
        parts.append(combine_segments(probs[start : start + n], np.array([e - s for s, e in c.spans])))
        start += n
    if start != len(probs):
        raise ValueError(f"{len(probs)} rows of probabilities for {start} inputs")
    p = np.mean(parts, axis=0).astype(np.float32)
    best = int(np.argmax(p))
    return ClipPrediction(
        emotion=spec.labels[best],
        confidence=float(p[best]),
        probabilities={label: float(v) for label, v in zip(spec.labels, p, strict=True)},
        duration_s=0.0,
    )


def configure_threads(threads: int | None = None) -> None:
    """Pin TensorFlow's thread pools (``SER_TF_THREADS``, default 1) before the first op runs.

    On CPU serving one thread per pool measured best: TF's default spends twice the CPU for no gain.
    """
    import tensorflow as tf

    n = threads or int(os.environ.get("SER_TF_THREADS", "1"))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        pass  # Already initialised in this process; the first setting stands.


class BasePredictor:
    """A model with its spec. ``forward`` takes normalised inputs; the rest take audio."""

    spec: ModelSpec
    tag: str
    runtime = "?"

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for at most MAX_BATCH prepared inputs."""
        raise NotImplementedError

    # --- steps ------------------------------------------------------------------------------
    def prepare(self, inputs: Inputs) -> np.ndarray:
        return prepare(self.spec, inputs)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (n, n_labels) for prepared inputs (n, *input_shape), in chunks of MAX_BATCH."""
        if len(x) == 0:
            return np.zeros((0, len(self.spec.labels)), np.float32)
        out = [self._forward(x[i : i + MAX_BATCH]) for i in range(0, len(x), MAX_BATCH)]
        return np.concatenate(out).astype(np.float32)

    def result(self, probs: np.ndarray, inputs: Inputs | list[Inputs]) -> ClipPrediction:
        return clip_result(self.spec, probs, inputs)

    # --- whole path -------------------------------------------------------------------------
    def inputs(self, y: np.ndarray) -> Inputs:
        return clip_inputs(y, self.spec.features)

    def predict_audio(self, y: np.ndarray) -> ClipPrediction:
        """Mono float32 audio at the spec's sample rate → one prediction."""
        return self.predict_many([y])[0]

    def predict_many(self, clips: list[np.ndarray], speeds: tuple[float, ...] = ()) -> list[ClipPrediction]:
        """Several clips in one batched forward pass; ``speeds``: test-time copies of each clip
        (`ser.pipeline.clip_copies`, as the service's SER_TTA_SPEEDS), averaged with it."""
        all_copies = [clip_copies(y, self.spec.features, speeds) for y in clips]
        probs = self.forward(np.concatenate([self.prepare(c) for copies in all_copies for c in copies]))
        out, start = [], 0
        for y, copies in zip(clips, all_copies, strict=True):
            n = sum(len(c.x) for c in copies)
            pred = self.result(probs[start : start + n], copies)
            pred.duration_s = len(y) / self.spec.features.sample_rate
            out.append(pred)
            start += n
        return out

    def predict_file(
        self, data: bytes | str | os.PathLike, limits: AudioLimits | None = None
    ) -> ClipPrediction:
        return self.predict_audio(load_audio(data, limits))


class Predictor(BasePredictor):
    """The Keras model under a `tf.function` (TensorFlow): training, evaluation, SER_RUNTIME=keras."""

    runtime = "keras"

    def __init__(self, model, spec: ModelSpec, tag: str = ""):
        import tensorflow as tf

        self.model = model
        self.spec = spec
        self.tag = tag
        signature = tf.TensorSpec([None, *spec.features.input_shape], tf.float32, name="features")
        self._tf_forward = tf.function(lambda x: model(x, training=False), input_signature=[signature])

    @classmethod
    def load(cls, tag: str = DEFAULT_MODEL, *, threads: int | None = None) -> Predictor:
        """Load a model from the BentoML model store (honours ``BENTOML_HOME``)."""
        import bentoml

        return cls.from_ref(bentoml.models.get(tag), threads=threads)

    @classmethod
    def from_ref(cls, ref, *, threads: int | None = None) -> Predictor:
        configure_threads(threads)
        import keras

        spec = ModelSpec.from_metadata(dict(ref.info.metadata))
        register_model_mel(ref, spec)
        model = keras.models.load_model(ref.path_of(MODEL_FILE), compile=False, safe_mode=True)
        return cls(model, spec, str(ref.tag))

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self._tf_forward(x).numpy()
