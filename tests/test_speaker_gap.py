"""training.speaker_gap: emotions' centroids compared across speakers (real TESS when present)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from conftest import tone

from ser.labels import EMOTIONS
from training import speaker_gap

LABELS = ["angry", "happy", "sad"]


def _two_speakers(happy_of_b: np.ndarray, n: int = 30, seed: int = 0):
    """Speaker A says angry/happy/sad along axes 0/1/2; B along the same axes, except her happy."""
    rng = np.random.default_rng(seed)
    axes = np.eye(4) * 3
    rows, emotions, speakers = [], [], []
    for speaker, happy in (("A", axes[1]), ("B", happy_of_b)):
        for label, centre in zip(LABELS, (axes[0], happy, axes[2]), strict=True):
            rows.append(centre + rng.normal(0, 0.3, (n, 4)))
            emotions += [label] * n
            speakers += [speaker] * n
    return np.concatenate(rows), np.array(emotions), np.array(speakers)


def test_standardise_per_speaker_removes_each_voice_level_and_scale():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(5, 2, (50, 3)), rng.normal(-3, 0.5, (40, 3))])
    speakers = np.array(["A"] * 50 + ["B"] * 40)
    z = speaker_gap.standardise_per_speaker(x, speakers)
    for s in "AB":
        assert np.allclose(z[speakers == s].mean(axis=0), 0, atol=1e-9)
        assert np.allclose(z[speakers == s].std(axis=0), 1, atol=1e-6)


def test_an_emotion_expressed_alike_is_its_own_nearest():
    x, emotions, speakers = _two_speakers(happy_of_b=np.eye(4)[1] * 3)
    result = speaker_gap.compare(speaker_gap.standardise_per_speaker(x, speakers), emotions, speakers, LABELS)
    for s in "AB":
        assert result[s]["nearest"] == {e: e for e in LABELS}
        assert min(result[s]["same_class"].values()) > 0.9
        assert result[s]["nearest_centroid_accuracy"] == 1.0


def test_an_emotion_expressed_differently_is_flagged_and_does_not_transfer():
    # B's happy lies where A's angry lies, with a little of an axis nobody else uses.
    x, emotions, speakers = _two_speakers(happy_of_b=np.array([3.0, 0, 0, 1.5]))
    z = speaker_gap.standardise_per_speaker(x, speakers)
    result = speaker_gap.compare(z, emotions, speakers, LABELS)
    assert result["B"]["nearest"]["happy"] == "angry"
    assert result["B"]["same_class"]["happy"] < 0.5 < result["B"]["same_class"]["sad"]
    assert result["B"]["nearest_centroid_recall"]["happy"] < 0.5
    assert result["B"]["nearest_centroid_recall"]["sad"] > 0.8
    sim = np.array(result["A"]["similarity"])  # Two speakers: each one's table is the other's, transposed.
    assert np.allclose(sim, np.array(result["B"]["similarity"]).T)
    text = speaker_gap.render({"labels": LABELS, "speakers": result})
    assert "happy" in text and "<- nearest is another emotion" in text


def test_clip_summary_is_mean_and_std_of_the_mfccs(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, tone(1.5, sr=22_050), 22_050)
    summary = speaker_gap.clip_summary(str(path))
    n = speaker_gap.CONFIG.n_mfcc
    assert summary.shape == (2 * n,) and np.isfinite(summary).all()
    assert (summary[n:] >= 0).all()  # Standard deviations.


def test_cli_on_the_synthetic_corpus(synthetic_dir, tmp_path, capsys):
    out = tmp_path / "gap.json"
    speaker_gap.main(["--data", str(synthetic_dir), "--json", str(out), "--workers", "1"])
    written = json.loads(out.read_text())
    assert written["labels"] == list(EMOTIONS)
    assert written["clips"] == 4 * 7 * 12
    assert len(written["speakers"]) == 4
    for r in written["speakers"].values():
        sim = np.array(r["similarity"])
        assert sim.shape == (7, 7) and (np.abs(sim) <= 1 + 1e-6).all()
        assert set(r["nearest"].values()) <= set(EMOTIONS)
        assert 0 <= r["nearest_centroid_accuracy"] <= 1
    assert "her clips by the others' nearest centroid" in capsys.readouterr().out


def test_one_speaker_is_refused(tmp_path):
    from ser.datasets import synthetic

    one = synthetic.generate(tmp_path / "one", clips_per_class=2, speakers=("SYA",))
    with pytest.raises(SystemExit, match="1 speaker"):
        speaker_gap.run(str(one), workers=1)


@pytest.mark.tess
def test_real_tess_happy_alone_is_expressed_differently(tess_dir):
    """What README's "Why *happy*" paragraph says: across the two actresses every emotion but
    *happy* is positively similar to itself, and *happy* is the least similar to itself of all;
    her *happy* sits where the other's *angry* or *pleasant surprise* does, and no clip of it is
    nearest the other's *happy*."""
    result = speaker_gap.run(str(tess_dir))
    assert result["clips"] == 2800
    oaf, yaf = result["speakers"]["OAF"], result["speakers"]["YAF"]
    same = oaf["same_class"]  # Two speakers: the same-class similarities are one set.
    assert same == yaf["same_class"]
    assert same["happy"] < 0 < min(v for e, v in same.items() if e != "happy")
    assert min(same, key=same.get) == "happy"
    assert oaf["nearest"]["happy"] == "pleasant_surprise" and yaf["nearest"]["happy"] == "angry"
    for r in (oaf, yaf):
        assert r["nearest_centroid_recall"]["happy"] < 0.05
        assert all(r["nearest"][e] == e for e in ("disgust", "neutral"))
