"""The manifest every dataset loader returns: one row per usable clip, plus what it skipped.

Loaders read labels and speakers from file names (never from audio content), look at each
file's header to learn its real format and duration, and report odd files instead of failing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import soundfile as sf

# Extensions we look at when walking a corpus; the content decides the real format.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".aifc", ".oga"})

# libsndfile's major format names mapped to the extensions a file of that format usually has.
FORMAT_EXTENSIONS: dict[str, frozenset[str]] = {
    "WAV": frozenset({".wav"}),
    "WAVEX": frozenset({".wav"}),
    "RF64": frozenset({".wav"}),
    "AIFF": frozenset({".aif", ".aiff", ".aifc"}),
    "FLAC": frozenset({".flac"}),
    "OGG": frozenset({".ogg", ".oga"}),
    "MP3": frozenset({".mp3"}),
}


@dataclass(frozen=True)
class Entry:
    """One labelled clip. ``emotion`` is canonical (see `ser.labels.EMOTIONS`)."""

    path: str
    emotion: str
    speaker: str
    dataset: str
    duration: float
    sample_rate: int = 0
    format: str = ""


@dataclass(frozen=True)
class Skipped:
    """A file a loader looked at and left out or flagged, with the reason."""

    path: str
    reason: str
    fatal: bool = True  # False: kept in the manifest, but worth a look (e.g. odd sample rate).


@dataclass
class Manifest:
    entries: list[Entry] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    def speakers(self) -> list[str]:
        return sorted({e.speaker for e in self.entries})

    def emotions(self) -> list[str]:
        return sorted({e.emotion for e in self.entries})

    def filter(self, *, speakers: list[str] | None = None) -> Manifest:
        keep = [e for e in self.entries if speakers is None or e.speaker in speakers]
        return Manifest(keep, list(self.skipped))

    def digest(self) -> str:
        """A short hash of the manifest rows (paths relative to their common root, labels, speakers)."""
        rows = sorted((Path(e.path).name, e.emotion, e.speaker, e.dataset) for e in self.entries)
        return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]

    def to_json(self) -> str:
        return json.dumps(
            {"entries": [asdict(e) for e in self.entries], "skipped": [asdict(s) for s in self.skipped]},
            indent=1,
        )


def iter_audio_files(root: Path) -> list[Path]:
    """Every file under ``root`` whose extension looks like audio, sorted for determinism."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def probe_file(path: Path, dataset: str, emotion: str, speaker: str, manifest: Manifest) -> None:
    """Read ``path``'s header and append an `Entry` (or a `Skipped`) to ``manifest``.

    Extension/content mismatches are kept but flagged: the audio is fine, the name lies.
    """
    try:
        info = sf.info(str(path))
    except Exception as e:  # libsndfile raises its own error types (and RuntimeError) for junk.
        manifest.skipped.append(Skipped(str(path), f"unreadable: {e}"))
        return
    if info.frames <= 0 or info.samplerate <= 0:
        manifest.skipped.append(Skipped(str(path), "empty: header declares no samples"))
        return
    expected = FORMAT_EXTENSIONS.get(info.format, frozenset())
    if path.suffix.lower() not in expected:
        manifest.skipped.append(
            Skipped(str(path), f"content is {info.format} but the name ends in {path.suffix}", fatal=False)
        )
    manifest.entries.append(
        Entry(
            path=str(path),
            emotion=emotion,
            speaker=speaker,
            dataset=dataset,
            duration=info.frames / info.samplerate,
            sample_rate=int(info.samplerate),
            format=info.format,
        )
    )


# What a file-name parser says about one file: ``(emotion, speaker)`` to keep it; a reason string to
# leave it out although the name is well formed (a song, an unmodelled class); None for a foreign name.
NameParse = tuple[str, str] | str | None


def load_by_pattern(
    root: str | Path, dataset: str, parse: Callable[[Path], NameParse], title: str, pattern: str
) -> Manifest:
    """The walk shared by loaders whose labels live in the file name (RAVDESS, CREMA-D, ...).

    ``title`` and ``pattern`` name the convention in the reason given for names ``parse`` rejects.
    """
    manifest = Manifest()
    for path in iter_audio_files(Path(root)):
        parsed = parse(path)
        if parsed is None:
            manifest.skipped.append(
                Skipped(str(path), f"name does not follow the {title} convention {pattern}")
            )
        elif isinstance(parsed, str):
            manifest.skipped.append(Skipped(str(path), parsed))
        else:
            probe_file(path, dataset, *parsed, manifest)
    return manifest


def names_mostly_parse(root: Path, parse: Callable[[Path], NameParse]) -> bool:
    """True when more than half of the first 200 audio files under ``root`` have names ``parse`` accepts.

    Well-formed names of left-out clips (songs, unmodelled classes) count: they still identify the corpus.
    """
    files = iter_audio_files(Path(root))[:200]
    return bool(files) and 2 * sum(parse(p) is not None for p in files) > len(files)
