"""The synthetic corpus: layout, format, determinism, idempotence, loader, and emotion cues."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio import voiced_intervals
from ser.datasets import synthetic
from ser.labels import EMOTIONS
from ser.pipeline import utterances

CLIPS = 3
SPEAKERS = ("SYA", "SYD")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.generate(tmp_path_factory.mktemp("syn"), clips_per_class=CLIPS, speakers=SPEAKERS)


def _spectral_centroid(y: np.ndarray, sr: int) -> float:
    """Centroid of the clip's average power spectrum: loud (voiced) frames dominate, as heard."""
    frames = np.lib.stride_tricks.sliding_window_view(y, 512)[::256] * np.hanning(512)
    power = (np.abs(np.fft.rfft(frames, axis=-1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(512, 1 / sr)
    return float((power * freqs).sum() / power.sum())


def _loud_rms(y: np.ndarray, sr: int) -> float:
    energy = (np.lib.stride_tricks.sliding_window_view(y, 512)[::256] ** 2).mean(axis=1)
    return float(np.sqrt(np.mean(energy[energy >= np.median(energy)])))


def _median_f0(y: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch (70-500 Hz) over the loudest frames."""
    frames = np.lib.stride_tricks.sliding_window_view(y, 1024)[::256]
    energy = (frames**2).sum(axis=1)
    frames = frames[energy > 0.1 * energy.max()] * np.hanning(1024)
    spectrum = np.abs(np.fft.rfft(frames, n=2048, axis=-1)) ** 2
    ac = np.fft.irfft(spectrum, axis=-1)[:, : sr // 70]
    lo = sr // 500
    return float(np.median(sr / (lo + ac[:, lo:].argmax(axis=1))))


def test_layout_counts_and_marker(corpus: Path) -> None:
    for speaker in SPEAKERS:
        for emotion, code in synthetic.EMOTION_CODES.items():
            files = sorted((corpus / f"{speaker}_{code}").glob("*.wav"))
            assert [f.name for f in files] == [f"{speaker}_w{i:03d}_{code}.wav" for i in range(CLIPS)], (
                emotion
            )
    marker = json.loads((corpus / synthetic.MARKER).read_text())
    assert marker["version"] == synthetic.GENERATOR_VERSION
    assert marker["parameters"] == {
        "clips_per_class": CLIPS,
        "speakers": list(SPEAKERS),
        "sample_rate": 16000,
        "seed": 0,
    }
    assert synthetic.looks_like(corpus)
    assert not synthetic.looks_like(corpus / "SYA_ps")


def test_format_and_durations(corpus: Path) -> None:
    for path in corpus.rglob("*.wav"):
        info = sf.info(str(path))
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 16000, 1)
        assert 1.2 <= info.duration <= 2.8, path.name
        y, _ = sf.read(str(path))
        assert np.abs(y).max() < 1.0  # never clipped
        assert np.abs(y[:800]).max() < 0.01  # starts with near-silence (50 ms)
        regions = voiced_intervals(y.astype(np.float32))
        assert len(utterances(regions, 16000)) == 1, path.name  # One utterance, as a training clip.


def test_load_finds_every_clip_with_its_labels(corpus: Path) -> None:
    manifest = synthetic.load(corpus)
    assert not manifest.skipped
    assert len(manifest) == CLIPS * len(SPEAKERS) * len(EMOTIONS)
    assert manifest.speakers() == sorted(SPEAKERS)
    assert manifest.emotions() == sorted(EMOTIONS)
    for entry in manifest.entries:
        path = Path(entry.path)
        assert entry.dataset == "synthetic"
        assert path.name.startswith(entry.speaker + "_")
        assert path.parent.name == f"{entry.speaker}_{synthetic.EMOTION_CODES[entry.emotion]}"
        assert entry.sample_rate == 16000 and 1.2 <= entry.duration <= 2.8


def test_deterministic_bytes(tmp_path: Path, corpus: Path) -> None:
    # A different clips_per_class too: each clip has its own random stream.
    other = synthetic.generate(tmp_path / "b", clips_per_class=1, speakers=("SYD",))
    for name in ("SYD_ps/SYD_w000_ps.wav", "SYD_angry/SYD_w000_angry.wav"):
        assert (other / name).read_bytes() == (corpus / name).read_bytes()
    different = synthetic.generate(tmp_path / "c", clips_per_class=1, speakers=("SYD",), seed=1)
    assert (different / "SYD_ps/SYD_w000_ps.wav").read_bytes() != (
        other / "SYD_ps/SYD_w000_ps.wav"
    ).read_bytes()


def test_idempotent_and_regenerates_on_new_parameters(tmp_path: Path) -> None:
    out = synthetic.generate(tmp_path, clips_per_class=2, speakers=("SYB",))
    clip = out / "SYB_sad" / "SYB_w001_sad.wav"
    original = clip.read_bytes()
    clip.write_bytes(original[:-2] + b"\x00\x00")  # a rewrite would restore the original bytes
    synthetic.generate(tmp_path, clips_per_class=2, speakers=("SYB",))
    assert clip.read_bytes() != original
    # Fewer clips per class: the stale ones go, the marker follows.
    synthetic.generate(tmp_path, clips_per_class=1, speakers=("SYB",))
    assert not clip.exists()
    assert len(synthetic.load(tmp_path)) == len(EMOTIONS)
    assert json.loads((tmp_path / synthetic.MARKER).read_text())["parameters"]["clips_per_class"] == 1
    # A missing file means the corpus is incomplete: it is written again.
    (out / "SYB_ps" / "SYB_w000_ps.wav").unlink()
    synthetic.generate(tmp_path, clips_per_class=1, speakers=("SYB",))
    assert (out / "SYB_ps" / "SYB_w000_ps.wav").is_file()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"speakers": ("SY_A",)},
        {"speakers": ()},
        {"speakers": ("SYA", "SYA")},
        {"clips_per_class": 0},
        {"seed": -1},
    ],
)
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        synthetic.generate(tmp_path, **{"clips_per_class": 1, **kwargs})
    assert not list(tmp_path.iterdir())


def test_any_speaker_id_gets_a_stable_voice(tmp_path: Path) -> None:
    voice = synthetic.voice_for("ZQX")
    assert voice == synthetic.voice_for("ZQX") and 110 <= voice.base_f0 <= 230
    manifest = synthetic.load(synthetic.generate(tmp_path, clips_per_class=1, speakers=("ZQX",)))
    assert manifest.speakers() == ["ZQX"] and len(manifest) == len(EMOTIONS)


def test_emotions_differ_in_brightness_and_pitch(corpus: Path) -> None:
    def measure(code: str, fn) -> float:
        clips = [sf.read(str(p)) for p in sorted(corpus.glob(f"*_{code}/*.wav"))]
        return float(np.mean([fn(y, sr) for y, sr in clips]))

    # Angry is pressed and bright, sad lax, breathy and dark.
    assert measure("angry", _spectral_centroid) > 1.15 * measure("sad", _spectral_centroid)
    # Surprise and happiness sit well above sadness in pitch; neutral in between.
    sad_f0, neutral_f0 = measure("sad", _median_f0), measure("neutral", _median_f0)
    assert measure("happy", _median_f0) > 1.3 * sad_f0
    assert measure("ps", _median_f0) > 1.3 * sad_f0
    assert neutral_f0 > 1.05 * sad_f0
    # Anger is loud, sadness quiet (RMS of the loud half of the frames, so pauses do not count).
    assert measure("angry", _loud_rms) > 2 * measure("sad", _loud_rms)


def test_cli_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert synthetic.main(["--out", str(tmp_path), "--clips-per-class", "1", "--speakers", "SYC"]) == 0
    assert "wrote 7 clips" in capsys.readouterr().out
    assert synthetic.main(["--out", str(tmp_path), "--clips-per-class", "1", "--speakers", "SYC"]) == 0
    assert "already up to date" in capsys.readouterr().out
