"""What a trained model needs besides its weights, stored as BentoML model metadata.

Training writes a `ModelSpec` with the model; the service, evaluation and the demo read it back
from the model store, so the feature settings, label order and normalisation statistics are
never retyped anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ser.features import FeatureConfig, NormStats

MODEL_FILE = "model.keras"
SPEC_VERSION = 1


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
