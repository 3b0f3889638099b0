"""TESS: the real copy's counts and odd files (skipped when absent), and folder spellings (no data needed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import tone

from ser.audio import SAMPLE_RATE, load_audio
from ser.datasets import detect, load_manifest
from ser.labels import EMOTIONS

# Files of the real copy that are not what their names say.
AIFF_NAMED_WAV = ("YAF_germ_angry.wav", "YAF_neat_fear.wav")
FLOAT_WAV_44K = ("OAF_back_angry.wav", "YAF_beg_sad.wav")
FLAC_96K = "OAF_food_fear.flac"
BAD_NAME = "OA_bite_neutral.flac"


@pytest.fixture(scope="module")
def manifest(tess_dir):
    return load_manifest(tess_dir)


def _by_name(manifest):
    return {Path(e.path).name: e for e in manifest.entries}


@pytest.mark.tess
def test_real_tess_counts(tess_dir, manifest):
    assert detect(tess_dir) == "tess"
    assert len(manifest) == 2800
    assert Counter(e.emotion for e in manifest.entries) == dict.fromkeys(EMOTIONS, 400)
    assert Counter(e.speaker for e in manifest.entries) == {"OAF": 1400, "YAF": 1400}
    assert {e.dataset for e in manifest.entries} == {"tess"}
    assert len({e.path for e in manifest.entries}) == 2800
    assert not [s for s in manifest.skipped if s.fatal]
    for speaker in ("OAF", "YAF"):
        per_class = Counter(e.emotion for e in manifest.entries if e.speaker == speaker)
        assert per_class == dict.fromkeys(EMOTIONS, 200)


@pytest.mark.tess
def test_real_tess_notes_the_odd_files(manifest):
    notes = {Path(s.path).name: s.reason for s in manifest.skipped}
    assert set(notes) == {*AIFF_NAMED_WAV, BAD_NAME}
    for name in AIFF_NAMED_WAV:
        assert notes[name] == "content is AIFF but the name ends in .wav"
    assert "does not follow <SPEAKER>_<word>_<emotion>" in notes[BAD_NAME]
    entries = _by_name(manifest)
    bad = entries[BAD_NAME]  # Kept: the folder OAF_neutral gives speaker and emotion.
    assert (bad.speaker, bad.emotion) == ("OAF", "neutral")
    assert {entries[n].format for n in AIFF_NAMED_WAV} == {"AIFF"}
    assert (entries["YAF_germ_angry.wav"].emotion, entries["YAF_neat_fear.wav"].emotion) == ("angry", "fear")


@pytest.mark.tess
def test_real_tess_decodes_every_odd_file(manifest):
    entries = _by_name(manifest)
    expected_rates = {
        **dict.fromkeys(FLOAT_WAV_44K, 44_100),
        FLAC_96K: 96_000,
        **dict.fromkeys(AIFF_NAMED_WAV, 24_414),
        BAD_NAME: 24_414,
    }
    for name, rate in expected_rates.items():
        entry = entries[name]
        assert entry.sample_rate == rate, name
        info = sf.info(entry.path)
        y = load_audio(entry.path)
        assert y.dtype == np.float32 and y.ndim == 1, name
        assert abs(len(y) - info.frames * SAMPLE_RATE / rate) <= 2, name
        assert np.isfinite(y).all(), name
        assert 1e-3 < np.sqrt(np.mean(y.astype(np.float64) ** 2)) < 1.0, name
    assert {entries[n].format for n in FLOAT_WAV_44K} == {"WAV"}
    assert {sf.info(entries[n].path).subtype for n in FLOAT_WAV_44K} == {"FLOAT"}


@pytest.mark.tess
def test_real_tess_rates_and_durations(manifest):
    rates = Counter(e.sample_rate for e in manifest.entries)
    assert rates == {24_414: 2797, 44_100: 2, 96_000: 1}  # 2795 FLACs and the 2 AIFFs at 24,414 Hz.
    assert all(1.0 < e.duration <= 5.0 for e in manifest.entries)
    longest = {Path(e.path).name for e in manifest.entries if e.duration > 3.0}
    assert longest == set(FLOAT_WAV_44K)  # 5 s each: longer than one model window.


def _write(path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone(0.3), SAMPLE_RATE, format=fmt)


@pytest.mark.tess
def test_every_real_tess_clip_is_one_utterance(manifest):
    """Why splitting clips at long pauses (`ser.pipeline.utterances`) left every TESS figure in the
    README as it was: no clip has such a pause, so each clip's inputs are what they were."""
    from ser.audio import voiced_intervals
    from ser.pipeline import utterances

    split = []
    for entry in manifest.entries:
        y = load_audio(entry.path)
        if len(utterances(voiced_intervals(y), SAMPLE_RATE)) != 1:
            split.append(Path(entry.path).name)
    assert not split, split


def test_tess_folder_spellings_and_extensions(tmp_path):
    """Real downloads spell folders every which way; the file name decides, the folder is a fallback."""
    root = tmp_path / "TESS Toronto emotional speech set data"
    files = {
        "OAF_Fear/OAF_back_fear.wav": ("fear", "OAF"),
        "OAF_Fear/OAF_bean_fear.wav": ("fear", "OAF"),
        "YAF pleasant surprised/YAF_bar_ps.WAV": ("pleasant_surprise", "YAF"),
        "YAF pleasant surprised/YAF_base_pleasant_surprised.flac": ("pleasant_surprise", "YAF"),
        "yaf_Sad/YAF_bath_sad.wav": ("sad", "YAF"),
        "yaf_Sad/YAF_bean_sad.aiff": ("sad", "YAF"),
        "OAF-Pleasant-Surprise/OAF_back_ps.wav": ("pleasant_surprise", "OAF"),
        "YAF_neutral/bite.wav": ("neutral", "YAF"),  # No label in the name: the folder's is used.
        "YAF_angry/YAF_dog_angry.wav": ("angry", "YAF"),
    }
    formats = {".wav": "WAV", ".flac": "FLAC", ".aiff": "AIFF"}
    for rel, _ in files.items():
        _write(root / rel, formats[Path(rel).suffix.lower()])
    (root / "YAF_angry" / "notes.txt").write_text("not audio")

    assert detect(root) == "tess"
    manifest = load_manifest(root)
    got = {Path(e.path).relative_to(root).as_posix(): (e.emotion, e.speaker) for e in manifest.entries}
    assert got == files
    assert {e.dataset for e in manifest.entries} == {"tess"}
    assert {e.format for e in manifest.entries} == {"WAV", "FLAC", "AIFF"}
    assert all(e.sample_rate == SAMPLE_RATE and e.duration == pytest.approx(0.3) for e in manifest.entries)
    notes = {Path(s.path).name: s for s in manifest.skipped}
    assert set(notes) == {"bite.wav"}  # Upper-case .WAV and spaced or dashed folders are no trouble.
    assert not notes["bite.wav"].fatal and "used the folder" in notes["bite.wav"].reason


def test_tess_reports_a_name_that_disagrees_with_its_folder(tmp_path):
    _write(tmp_path / "OAF_sad" / "OAF_back_angry.wav", "WAV")
    _write(tmp_path / "OAF_sad" / "OAF_bean_sad.wav", "WAV")
    _write(tmp_path / "misc" / "recording.wav", "WAV")
    manifest = load_manifest(tmp_path, "tess")
    assert {Path(e.path).name: e.emotion for e in manifest.entries} == {
        "OAF_back_angry.wav": "angry",  # The file name wins.
        "OAF_bean_sad.wav": "sad",
    }
    reasons = {Path(s.path).name: (s.reason, s.fatal) for s in manifest.skipped}
    assert reasons["OAF_back_angry.wav"] == ("file name says angry but its folder says sad", False)
    assert reasons["recording.wav"] == ("no emotion in the file or folder name", True)
