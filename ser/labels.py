"""The seven canonical emotions and how each corpus spells them.

Every model, report and response uses `EMOTIONS` in this order; dataset loaders map their own
codes onto it with the tables below (a code mapped to ``None`` is a class we do not model, such
as RAVDESS *calm*, and its files are left out).
"""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "neutral",
    "pleasant_surprise",
    "sad",
)
NUM_CLASSES = len(EMOTIONS)  # 7

# Spellings met in TESS folder and file names (lower-cased, spaces and dashes as underscores).
TESS_LABELS: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "pleasant_surprise",
    "pleasant_surprise": "pleasant_surprise",
    "pleasant_surprised": "pleasant_surprise",
    "sad": "sad",
}

# RAVDESS file names: modality-channel-EMOTION-intensity-statement-repetition-actor.
RAVDESS_LABELS: dict[str, str | None] = {
    "01": "neutral",
    "02": None,  # calm
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "pleasant_surprise",  # "surprised"
}

# CREMA-D file names: ActorID_Sentence_EMOTION_Level.
CREMAD_LABELS: dict[str, str | None] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

# SAVEE file names: SPEAKER_<code><nn>.wav with codes a, d, f, h, n, sa, su.
SAVEE_LABELS: dict[str, str | None] = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "pleasant_surprise",
}

# EMO-DB file names: 2-digit speaker, text code, EMOTION letter (German initials), version.
EMODB_LABELS: dict[str, str | None] = {
    "W": "angry",  # Ärger (Wut)
    "L": None,  # Langeweile (boredom)
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happy",  # Freude
    "T": "sad",  # Trauer
    "N": "neutral",
}


def label_index(emotion: str) -> int:
    """Index of a canonical emotion in `EMOTIONS`; raises ValueError naming the allowed ones."""
    try:
        return EMOTIONS.index(emotion)
    except ValueError:
        raise ValueError(f"unknown emotion {emotion!r}; allowed: {', '.join(EMOTIONS)}") from None
