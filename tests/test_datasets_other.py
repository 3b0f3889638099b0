"""RAVDESS, CREMA-D, SAVEE and EMO-DB loaders on tiny corpora written at test time.

Each fixture uses the real names and folder layout of its corpus, covers every label code
(including the unmodelled ones), and adds one unreadable file and one foreign name.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import ser.datasets
from ser.datasets import cremad, emodb, ravdess, savee, tess
from ser.datasets.base import Manifest

RATE = 16_000
SECONDS = 0.3


def _tone(path: Path) -> None:
    """0.3 s of a 220 Hz sine, in the format the extension names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(RATE * SECONDS)) / RATE
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 220 * t), RATE, format=path.suffix[1:].upper())


def _junk(path: Path) -> None:
    """A well-named file whose bytes are not audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not audio " * 20)


def _reasons(manifest: Manifest) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in manifest.skipped}


def _check_entries(manifest: Manifest, dataset: str) -> None:
    for entry in manifest.entries:
        assert entry.dataset == dataset
        assert entry.duration == pytest.approx(SECONDS, abs=1e-3)
        assert entry.sample_rate == RATE


@pytest.fixture
def ravdess_root(tmp_path: Path) -> Path:
    root = tmp_path / "ravdess"
    for code in ("01", "02", "03", "04", "05", "06", "07", "08"):  # Every emotion, actor 1.
        _tone(root / "Actor_01" / f"03-01-{code}-01-01-01-01.wav")
    _tone(root / "Actor_12" / "03-01-05-02-02-02-12.WAV")  # Upper-case extension.
    _tone(root / "Actor_12" / "03-01-04-02-01-01-12.flac")
    _tone(root / "Actor_12" / "03-02-05-01-01-01-12.wav")  # Song.
    _junk(root / "Actor_12" / "03-01-03-01-01-01-12.wav")
    _tone(root / "Actor_12" / "03-01-09-01-01-01-12.wav")  # No emotion 09.
    _tone(root / "Actor_12" / "notes.wav")
    return root


@pytest.fixture
def cremad_root(tmp_path: Path) -> Path:
    root = tmp_path / "cremad" / "AudioWAV"
    levels = ("HI", "LO", "MD", "XX", "XX", "X")  # Every level, and the truncated `X` some files carry.
    for code, level in zip(("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"), levels, strict=True):
        _tone(root / f"1001_DFA_{code}_{level}.wav")
    _tone(root / "1091_IEO_hap_lo.Wav")  # Lower-cased name and odd extension case.
    _junk(root / "1091_TIE_SAD_XX.wav")
    _tone(root / "1091_TIE_SUR_XX.wav")  # CREMA-D has no surprise.
    _tone(root / "1091-TIE-SAD-XX.wav")
    return tmp_path / "cremad"


@pytest.fixture
def savee_flat(tmp_path: Path) -> Path:
    root = tmp_path / "savee_flat" / "ALL"
    for code in ("a", "d", "f", "h", "n", "sa", "su"):
        _tone(root / f"DC_{code}01.wav")
    _tone(root / "KL_sa15.wav")
    _junk(root / "JE_n02.wav")
    _tone(root / "DC_s01.wav")  # "s" alone is no code.
    return tmp_path / "savee_flat"


@pytest.fixture
def savee_folders(tmp_path: Path) -> Path:
    root = tmp_path / "savee_folders" / "AudioData"
    for code in ("a", "d", "f", "h", "n", "sa", "su"):
        _tone(root / "JK" / f"{code}03.wav")
    _tone(root / "JE" / "su12.wav")
    _junk(root / "JE" / "h01.wav")
    _tone(root / "other" / "a01.wav")  # A bare name outside a speaker folder.
    return tmp_path / "savee_folders"


@pytest.fixture
def emodb_root(tmp_path: Path) -> Path:
    root = tmp_path / "emodb" / "wav"
    for letter in "WLEAFTN":
        _tone(root / f"03a01{letter}a.wav")
    _tone(root / "16b10Tb.wav")
    _junk(root / "10a02Wc.wav")
    _tone(root / "03a01Xa.wav")  # No emotion X.
    return tmp_path / "emodb"


@pytest.fixture
def tess_root(tmp_path: Path) -> Path:
    root = tmp_path / "tess"
    _tone(root / "OAF_angry" / "OAF_back_angry.wav")
    _tone(root / "YAF_sad" / "YAF_dog_sad.wav")
    return root


def test_ravdess(ravdess_root: Path) -> None:
    manifest = ravdess.load(ravdess_root)
    _check_entries(manifest, "ravdess")
    assert len(manifest) == 9  # 8 actor-1 clips minus calm, plus two actor-12 ones.
    assert Counter(e.emotion for e in manifest.entries) == {
        "neutral": 1,
        "happy": 1,
        "sad": 2,
        "angry": 2,
        "fear": 1,
        "disgust": 1,
        "pleasant_surprise": 1,
    }
    assert manifest.speakers() == ["ravdess_01", "ravdess_12"]
    reasons = _reasons(manifest)
    assert len(reasons) == 5
    assert all(s.fatal for s in manifest.skipped)
    assert "calm is not modelled" in reasons["03-01-02-01-01-01-01.wav"]
    assert "song, not speech" in reasons["03-02-05-01-01-01-12.wav"]
    assert reasons["03-01-03-01-01-01-12.wav"].startswith("unreadable")
    for bad in ("03-01-09-01-01-01-12.wav", "notes.wav"):
        assert "does not follow the RAVDESS convention" in reasons[bad]


def test_cremad(cremad_root: Path) -> None:
    manifest = cremad.load(cremad_root)
    _check_entries(manifest, "cremad")
    assert len(manifest) == 7
    assert sorted(e.emotion for e in manifest.entries) == [
        "angry",
        "disgust",
        "fear",
        "happy",
        "happy",
        "neutral",
        "sad",
    ]
    assert manifest.speakers() == ["cremad_1001", "cremad_1091"]
    reasons = _reasons(manifest)
    assert len(reasons) == 3
    assert reasons["1091_TIE_SAD_XX.wav"].startswith("unreadable")
    for bad in ("1091_TIE_SUR_XX.wav", "1091-TIE-SAD-XX.wav"):
        assert "does not follow the CREMA-D convention" in reasons[bad]


@pytest.mark.parametrize("layout", ["savee_flat", "savee_folders"])
def test_savee(layout: str, request: pytest.FixtureRequest) -> None:
    manifest = savee.load(request.getfixturevalue(layout))
    _check_entries(manifest, "savee")
    assert len(manifest) == 8
    counts = Counter(e.emotion for e in manifest.entries)
    if layout == "savee_flat":
        assert manifest.speakers() == ["DC", "KL"]
        assert counts == {
            "angry": 1,
            "disgust": 1,
            "fear": 1,
            "happy": 1,
            "neutral": 1,
            "sad": 2,
            "pleasant_surprise": 1,
        }
        junk, bad = "JE_n02.wav", "DC_s01.wav"
    else:
        assert manifest.speakers() == ["JE", "JK"]
        assert counts == {
            "angry": 1,
            "disgust": 1,
            "fear": 1,
            "happy": 1,
            "neutral": 1,
            "sad": 1,
            "pleasant_surprise": 2,
        }
        junk, bad = "h01.wav", "a01.wav"
    reasons = _reasons(manifest)
    assert len(reasons) == 2
    assert reasons[junk].startswith("unreadable")
    assert "does not follow the SAVEE convention" in reasons[bad]


def test_savee_two_letter_codes_win() -> None:
    assert savee._parse(Path("DC_sa01.wav")) == ("sad", "DC")
    assert savee._parse(Path("AudioData/KL/su07.wav")) == ("pleasant_surprise", "KL")
    assert savee._parse(Path("AudioData/kl/SA07.wav")) == ("sad", "KL")
    assert savee._parse(Path("DC_s01.wav")) is None


def test_emodb(emodb_root: Path) -> None:
    manifest = emodb.load(emodb_root)
    _check_entries(manifest, "emodb")
    assert len(manifest) == 7
    assert Counter(e.emotion for e in manifest.entries) == {
        "angry": 1,
        "disgust": 1,
        "fear": 1,
        "happy": 1,
        "sad": 2,
        "neutral": 1,
    }
    assert manifest.speakers() == ["emodb_03", "emodb_16"]
    reasons = _reasons(manifest)
    assert len(reasons) == 3
    assert "boredom is not modelled" in reasons["03a01La.wav"]
    assert reasons["10a02Wc.wav"].startswith("unreadable")
    assert "does not follow the EMO-DB convention" in reasons["03a01Xa.wav"]


def test_detect_tells_the_corpora_apart(
    ravdess_root: Path,
    cremad_root: Path,
    savee_flat: Path,
    savee_folders: Path,
    emodb_root: Path,
    tess_root: Path,
) -> None:
    roots = {
        "ravdess": ravdess_root,
        "cremad": cremad_root,
        "savee_flat": savee_flat,
        "savee_folders": savee_folders,
        "emodb": emodb_root,
        "tess": tess_root,
    }
    loaders = {"ravdess": ravdess, "cremad": cremad, "savee": savee, "emodb": emodb, "tess": tess}
    for fixture, root in roots.items():
        expected = fixture.split("_")[0]
        assert ser.datasets.detect(root) == expected, fixture
        # No other loader claims this corpus, whatever order `detect` tries them in.
        claims = {name for name, loader in loaders.items() if loader.looks_like(root)}
        assert claims == {expected}, fixture


def test_detect_rejects_an_unknown_layout(tmp_path: Path) -> None:
    _tone(tmp_path / "recording.wav")
    with pytest.raises(ValueError, match="no known corpus layout"):
        ser.datasets.detect(tmp_path)
