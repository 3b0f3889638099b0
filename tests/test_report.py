"""The data report (`training.report`) on a tiny TESS-layout corpus written at test time.

Eight normal clips (two speakers × two emotions × two words) plus one file per kind of trouble
the report must find; each odd file must be flagged with its reason and the normal ones not.
The last test runs on the real TESS copy when it is present.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training.report import build_report, main
from training.report_stats import FileStats, duration_bounds, file_reasons

RATE = 24_414  # TESS's own sample rate.
SECONDS = 1.5

# File (relative to the corpus root) → a substring of the reason it must be flagged with.
ODD = {
    "OAF_angry/OAF_flac_angry.wav": "content is FLAC",
    "OAF_angry/OAF_rate_angry.wav": "unusual sample rate: 96000 Hz",
    "YAF_angry/YAF_clip_angry.wav": "clipped",
    "YAF_angry/YAF_nan_angry.wav": "non-finite",
    "YAF_sad/YAF_quiet_sad.wav": "silent",
    "YAF_sad/YAF_float_sad.wav": "beyond full scale",
    "OAF_sad/OAF_junk_sad.wav": "unreadable",
    "OAF_sad/OA_name_sad.wav": "name does not follow",
    "OAF_sad/OAF_long_sad.wav": "too long",
    "OAF_sad/OAF_short_sad.wav": "too short",
}
NORMAL = [f"{spk}_{emo}/{spk}_{word}_{emo}.wav" for spk in ("OAF", "YAF") for emo in ("angry", "sad")
          for word in ("back", "bar")]  # fmt: skip


def _tone(seconds: float = SECONDS, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    """A 200 Hz tone under a raised-sine envelope: loud in the middle, like a word."""
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(np.pi * t / seconds) * np.sin(2 * np.pi * 200 * t)


def _write(root: Path, name: str, y: np.ndarray, rate: int = RATE, **kwargs) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), y, rate, **{"format": "WAV", "subtype": "PCM_16", **kwargs})


def _corpus(root: Path) -> Path:
    for name in NORMAL:
        _write(root, name, _tone())
    _write(root, "OAF_angry/OAF_flac_angry.wav", _tone(), format="FLAC")
    _write(root, "OAF_angry/OAF_rate_angry.wav", _tone(rate=96_000), rate=96_000)
    _write(root, "YAF_angry/YAF_clip_angry.wav", np.clip(_tone(amplitude=3.0), -1.0, 1.0))
    with_nan = _tone()
    with_nan[1000:1010] = np.nan
    _write(root, "YAF_angry/YAF_nan_angry.wav", with_nan, subtype="FLOAT")
    _write(root, "YAF_sad/YAF_quiet_sad.wav", np.zeros(int(SECONDS * RATE)))
    _write(root, "YAF_sad/YAF_float_sad.wav", _tone(amplitude=2.0), subtype="FLOAT")
    (root / "OAF_sad/OAF_junk_sad.wav").write_bytes(b"RIFF but not really a wave file " * 10)
    _write(root, "OAF_sad/OA_name_sad.wav", _tone())
    _write(root, "OAF_sad/OAF_long_sad.wav", _tone(seconds=12.0))
    _write(root, "OAF_sad/OAF_short_sad.wav", _tone(seconds=0.3))
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = _corpus(tmp_path_factory.mktemp("tess"))
    out = tmp_path_factory.mktemp("report")
    return build_report(root, "tess", out, workers=1), out


def _reasons(summary: dict) -> dict[str, list[str]]:
    return {f["path"]: f["reasons"] for f in summary["flagged"]}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_file_is_flagged_with_its_reason(report: tuple[dict, Path], name: str) -> None:
    reasons = _reasons(report[0])
    assert name in reasons, f"{name} not flagged; flagged: {sorted(reasons)}"
    assert any(ODD[name] in r for r in reasons[name]), reasons[name]


def test_normal_files_are_not_flagged_and_each_file_is_listed_once(report: tuple[dict, Path]) -> None:
    summary = report[0]
    paths = [f["path"] for f in summary["flagged"]]
    assert sorted(paths) == sorted(ODD)  # Nothing else, and no duplicates.
    assert summary["n_flagged"] == len(ODD)
    # The float file is only beyond full scale (not also "clipped"); the short one only too short.
    assert len(_reasons(summary)["YAF_sad/YAF_float_sad.wav"]) == 1
    assert len(_reasons(summary)["OAF_sad/OAF_short_sad.wav"]) == 1


def test_counts(report: tuple[dict, Path]) -> None:
    summary = report[0]
    assert summary["n_files"] == len(NORMAL) + len(ODD)
    assert summary["n_usable"] == len(NORMAL) + len(ODD) - 1  # The junk file cannot be read.
    assert summary["per_label"] == {"angry": 8, "sad": 9}
    assert summary["per_speaker"] == {"OAF": 9, "YAF": 8}  # OA_name_sad's speaker comes from its folder.
    assert summary["per_label_speaker"] == {"angry": {"OAF": 4, "YAF": 4}, "sad": {"OAF": 5, "YAF": 4}}
    balance = summary["balance"]
    assert balance["min"] == {"label": "angry", "count": 8} and balance["max"] == {"label": "sad", "count": 9}
    assert not balance["balanced"]  # Five of the seven emotions are missing.
    assert summary["durations"]["min"] == pytest.approx(0.3, abs=1e-3)
    assert summary["durations"]["median"] == pytest.approx(SECONDS, abs=1e-3)
    assert summary["durations"]["max"] == pytest.approx(12.0, abs=1e-3)


def test_files_written(report: tuple[dict, Path]) -> None:
    summary, out = report
    for name in (
        "report.md",
        "summary.json",
        "counts.png",
        "durations.png",
        "examples/angry.png",
        "examples/sad.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "summary.json").read_text()) == summary
    text = (out / "report.md").read_text()
    for link in ("](counts.png)", "](durations.png)", "](examples/angry.png)", "](examples/sad.png)"):
        assert link in text
    assert "YAF_float_sad.wav" in text and "Not balanced" in text
    assert summary["examples"]["angry"] in NORMAL  # Examples come from unflagged clips.


def test_cli_in_parallel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "tess"
    for name in NORMAL[:4]:
        _write(root, name, _tone())
    _write(root, "OAF_angry/OAF_rate_angry.wav", _tone(rate=96_000), rate=96_000)
    summary = main(["--data", str(root), "--out", str(tmp_path / "out"), "--workers", "2"])
    printed = capsys.readouterr().out
    assert summary["n_files"] == 5 and [f["path"] for f in summary["flagged"]] == [
        "OAF_angry/OAF_rate_angry.wav"
    ]
    assert "OAF_rate_angry.wav: unusual sample rate" in printed and str(tmp_path / "out") in printed


def test_duration_bounds_of_equal_clips_tolerate_small_differences() -> None:
    low, high = duration_bounds([2.0] * 10)
    assert low < 1.9 and high > 2.1  # IQR 0 is floored, so 2.05 s is not "too long".
    assert duration_bounds([1.0, 2.0, 3.0, 4.0] * 5)[0] == 0.5  # Never below the absolute 0.5 s.
    assert duration_bounds([1.0, 8.0] * 5)[1] == 10.0  # Never above the absolute 10 s.
    ok = FileStats("x.wav", duration=2.05, sample_rate=RATE, subtype="PCM_16", peak=0.5, voiced=1.0)
    assert file_reasons(ok, RATE, (low, high)) == []


def _tess_root() -> Path:
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tess"
    return Path(os.environ.get("SER_TESS_DIR", default)).resolve()


@pytest.mark.tess
def test_real_tess(tmp_path: Path) -> None:
    root = _tess_root()
    if not root.is_dir():
        pytest.skip(f"TESS copy not found at {root}: set SER_TESS_DIR")
    summary = build_report(root, "auto", tmp_path / "report", workers=2)
    assert summary["n_files"] == 2800
    reasons = {Path(f["path"]).name: " ".join(f["reasons"]) for f in summary["flagged"]}
    expected = {
        "YAF_germ_angry.wav": ["content is AIFF"],
        "YAF_neat_fear.wav": ["content is AIFF"],
        "OAF_food_fear.flac": ["96000 Hz"],
        "OAF_back_angry.wav": ["44100 Hz", "too long", "beyond full scale"],
        "YAF_beg_sad.wav": ["44100 Hz", "too long", "beyond full scale"],
        "OA_bite_neutral.flac": ["name does not follow"],
    }
    for name, parts in expected.items():
        assert name in reasons, f"{name} not flagged; flagged: {sorted(reasons)}"
        for part in parts:
            assert part in reasons[name], (name, reasons[name])
    assert (tmp_path / "report" / "report.md").exists()
