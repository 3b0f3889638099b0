"""Request audio for the load tests and the benchmark, made in memory from a corpus.

The corpus is TESS when ``SER_TESS_DIR`` (default ``../shared/data/tess``) holds it, else the
embedded synthetic corpus, generated once (deterministically) into the cache folder
(``SER_CACHE_DIR``, default ``~/.cache/ser``). Clips are decoded once and re-encoded in memory
as WAV, FLAC, OGG/Vorbis or MP3; multipart bodies are built once so the load generator spends
its CPU on sending, not encoding.

    python -m loadtests.clips --out DIR     # the benchmark's 16 clips as WAV files (for bench_inproc)
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
TESS_DIR = Path(os.environ.get("SER_TESS_DIR", REPO.parent / "shared" / "data" / "tess"))
SYNTHETIC_CLIPS_PER_CLASS = 12  # 4 speakers x 7 emotions x 12 = 336 clips, ~5 s to generate.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
CONTENT_TYPES = {"WAV": "audio/wav", "FLAC": "audio/flac", "OGG": "audio/ogg", "MP3": "audio/mpeg"}
SUFFIXES = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}


@dataclass
class Clip:
    name: str
    y: np.ndarray  # Mono float32.
    sr: int

    @property
    def duration(self) -> float:
        return len(self.y) / self.sr


def cache_root() -> Path:
    return Path(os.environ.get("SER_CACHE_DIR") or Path.home() / ".cache" / "ser")


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)


def synthetic_corpus() -> Path:
    from ser.datasets import synthetic

    return synthetic.generate(cache_root() / "synthetic-load", clips_per_class=SYNTHETIC_CLIPS_PER_CLASS)


def corpus(source: str = "auto") -> tuple[str, Path]:
    """("tess" | "synthetic", folder). ``source``: auto (TESS if present), tess or synthetic."""
    if source in ("auto", "tess") and TESS_DIR.is_dir() and _audio_files(TESS_DIR):
        return "tess", TESS_DIR
    if source == "tess":
        raise FileNotFoundError(f"no TESS audio under {TESS_DIR} (set SER_TESS_DIR)")
    return "synthetic", synthetic_corpus()


def load_clips(n: int = 16, source: str = "auto", min_s: float = 0.5, max_s: float = 10.0) -> list[Clip]:
    """``n`` clips spread evenly over the corpus (so over speakers and emotions), decoded, in the
    corpus's order."""
    _, folder = corpus(source)
    files = _audio_files(folder)
    candidates = files[:: max(1, len(files) // (n * 2))]  # About 2n, evenly spaced.
    # Every other candidate first (n of them, spread over the whole corpus), the rest as spares
    # for unreadable or too long files: taking them in order would fill n from the first half.
    clips: list[Clip] = []
    for path in candidates[::2] + candidates[1::2]:
        try:
            y, sr = sf.read(path, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError):
            continue  # Real corpora hold a few files that are not what their names say.
        clip = Clip(path.name, y.mean(axis=1), sr)
        if min_s <= clip.duration <= max_s:
            clips.append(clip)
        if len(clips) == n:
            break
    if not clips:
        raise RuntimeError(f"no usable clips under {folder}")
    order = {p.name: i for i, p in enumerate(files)}
    return sorted(clips, key=lambda c: order[c.name])


def write_bodies(folder: Path, clips: list[Clip], fmt: str = "WAV") -> list[Path]:
    """``clips`` written to ``folder`` as ``00.wav``, ``01.wav``, … (what `make bench` sends)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:02d}.{SUFFIXES[fmt]}" for i in range(len(clips))]
    for path, clip in zip(paths, clips, strict=True):
        path.write_bytes(encode(clip, fmt))
    return paths


def resample(y: np.ndarray, sr: int, target: int) -> np.ndarray:
    import soxr

    return y if sr == target else soxr.resample(y, sr, target).astype(np.float32)


def encode(clip: Clip, fmt: str = "WAV") -> bytes:
    """The clip as a file of ``fmt`` (WAV, FLAC, OGG, MP3); MP3 at 16 kHz unless the rate fits MP3."""
    y, sr = clip.y, clip.sr
    if fmt == "MP3" and sr not in MP3_RATES:
        y, sr = resample(y, sr, 16_000), 16_000
    buf = io.BytesIO()
    subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}[fmt]
    sf.write(buf, y, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def join(clips: list[Clip], seconds: float, gap_s: float = 0.6) -> Clip:
    """Clips one after another with ``gap_s`` of silence until ``seconds`` long (a long recording)."""
    sr = clips[0].sr
    parts, total, i = [], 0, 0
    while total < seconds * sr:
        y = resample(clips[i % len(clips)].y, clips[i % len(clips)].sr, sr)
        parts += [y, np.zeros(int(gap_s * sr), np.float32)]
        total += len(y) + int(gap_s * sr)
        i += 1
    return Clip(f"joined-{seconds:g}s", np.concatenate(parts)[: int(seconds * sr)], sr)


def tone(seconds: float, sr: int = 16_000, amp: float = 0.3) -> Clip:
    t = np.arange(int(seconds * sr)) / sr
    y = amp * np.sin(2 * np.pi * 180 * t) * (0.55 + 0.45 * np.sin(2 * np.pi * 3 * t))
    return Clip(f"tone-{seconds:g}s", y.astype(np.float32), sr)


def bad_inputs() -> list[tuple[str, bytes, int, str]]:
    """(file name, bytes, expected HTTP status, expected error code) for /predict."""
    silence = Clip("silence", np.zeros(32_000, np.float32), 16_000)
    return [
        ("junk.wav", b"this is not audio at all " * 40, 415, "invalid_audio"),
        ("silence.wav", encode(silence), 422, "no_speech"),
        ("short.wav", encode(tone(0.1)), 422, "audio_too_short"),
    ]


def content_type(name: str) -> str:
    """The audio Content-Type for a file name, by its suffix (WAV when unknown)."""
    fmt = next((f for f, s in SUFFIXES.items() if name.lower().endswith("." + s)), "WAV")
    return CONTENT_TYPES[fmt]


def raw_body(name: str, data: bytes) -> tuple[bytes, str]:
    """(body, content type) of an upload of the file itself as the request body."""
    return data, content_type(name)


def multipart(field: str, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data upload of ``files`` under ``field``."""
    from urllib3 import encode_multipart_formdata

    fields = []
    for name, data in files:
        fields.append((field, (name, data, content_type(name))))
    return encode_multipart_formdata(fields)


def main(argv: list[str] | None = None) -> list[Path]:
    import argparse

    p = argparse.ArgumentParser(prog="python -m loadtests.clips", description="Write load-test clips.")
    p.add_argument("--out", required=True, type=Path, help="folder to write the files into")
    p.add_argument("-n", type=int, default=16, help="how many clips")
    p.add_argument("--format", default="WAV", choices=sorted(SUFFIXES))
    p.add_argument("--source", default="auto", choices=["auto", "tess", "synthetic"])
    args = p.parse_args(argv)
    paths = write_bodies(args.out, load_clips(args.n, args.source), args.format)
    print(f"{len(paths)} clips from {corpus(args.source)[0]} in {args.out}")
    return paths


if __name__ == "__main__":
    main()
