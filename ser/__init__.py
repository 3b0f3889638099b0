"""ser: speech emotion recognition, from audio bytes to per-emotion probabilities."""

__version__ = "0.1.0"
