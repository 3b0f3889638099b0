"""Dataset loaders: each turns a corpus folder into a `Manifest` by its file-naming convention."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from ser.datasets.base import Entry, Manifest, Skipped

LOADERS = ("tess", "ravdess", "cremad", "savee", "emodb", "synthetic")
DATASETS = ("auto", *LOADERS)

__all__ = ["DATASETS", "LOADERS", "Entry", "Manifest", "Skipped", "detect", "load_manifest", "loader"]


def loader(name: str) -> ModuleType:
    """The loader module for a dataset name (imported on use, so `python -m` of one stays clean)."""
    if name not in LOADERS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return importlib.import_module(f"ser.datasets.{name}")


def detect(root: str | Path) -> str:
    """Name of the loader whose naming convention fits ``root``; ValueError when none does."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data folder {str(root)!r} does not exist")
    # Synthetic first: it writes a marker file, and its clip names also parse as TESS names.
    for name in ("synthetic", "tess", "ravdess", "cremad", "emodb", "savee"):
        if loader(name).looks_like(root):
            return name
    raise ValueError(f"no known corpus layout under {str(root)!r}; pass --dataset ({', '.join(LOADERS)})")


def load_manifest(root: str | Path, dataset: str = "auto") -> Manifest:
    if dataset == "auto":
        dataset = detect(root)
    return loader(dataset).load(root)
