"""What a trained model needs besides its weights, stored as BentoML model metadata.

Training writes a `ModelSpec` with the model; the service, evaluation and the demo read it back
from the model store, so the feature settings, label order and normalisation statistics are
never retyped anywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ser.features import FeatureConfig, NormStats, register_mel_filterbank

MODEL_FILE = "model.keras"  # The Keras model: training, evaluation, SER_RUNTIME=keras.
LITERT_FILE = "model.tflite"  # Its LiteRT export (ser.export), served without TensorFlow.
MEL_FILE = "mel_basis.npy"  # librosa's mel filterbank for the model's features: serving needs no librosa.
SPEC_VERSION = 1

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    labels: tuple[str, ...]
    features: FeatureConfig
    norm: NormStats
    preset: str
    info: dict = field(default_factory=dict)  # Split, manifest hash, test metrics: for people.

    def to_metadata(self) -> dict:
        return {
            "spec_version": SPEC_VERSION,
            "labels": list(self.labels),
            "features": self.features.to_dict(),
            "norm": self.norm.to_dict(),
            "preset": self.preset,
            **self.info,
        }

    @classmethod
    def from_metadata(cls, meta: dict) -> ModelSpec:
        version = meta.get("spec_version")
        if version != SPEC_VERSION:
            raise ValueError(f"model spec version {version!r} is not supported (expected {SPEC_VERSION})")
        known = {"spec_version", "labels", "features", "norm", "preset"}
        return cls(
            labels=tuple(meta["labels"]),
            features=FeatureConfig.from_dict(meta["features"]),
            norm=NormStats.from_dict(meta["norm"]),
            preset=meta["preset"],
            info={k: v for k, v in meta.items() if k not in known},
        )

    @property
    def runtime(self) -> dict:
        """What ser.export stored beside the Keras model (metadata key ``runtime``); {} for older models.

        ``{"format": "litert", "file": "model.tflite", "batch": "dynamic" | 1, "max_abs_diff": ...,
        "mel_file": "mel_basis.npy", "tensorflow": ..., "keras": ..., "ai_edge_litert": ...}``
        """
        return dict(self.info.get("runtime") or {})


def register_model_mel(ref, spec: ModelSpec) -> bool:
    """Make `ser.features` use the mel filterbank stored with the model, if it has one."""
    name = spec.runtime.get("mel_file", MEL_FILE)
    try:
        path = ref.path_of(name)
        matrix = np.load(path, allow_pickle=False)
    except (FileNotFoundError, OSError):
        logger.info("model %s stores no %s: the mel filterbank comes from librosa", ref.tag, name)
        return False
    register_mel_filterbank(spec.features, matrix)
    return True
