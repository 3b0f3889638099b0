"""The clips the benchmark, Locust and the soak send: spread over the whole corpus."""

from __future__ import annotations

import numpy as np
import soundfile as sf


def test_load_clips_spreads_over_every_speaker_and_skips_unreadable_files(tmp_path, monkeypatch):
    from loadtests import clips

    for speaker in ("OAF", "YAF"):
        folder = tmp_path / f"{speaker}_angry"
        folder.mkdir()
        for i in range(20):
            sf.write(folder / f"{speaker}_w{i:02d}_angry.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "YAF_angry" / "YAF_w04_angry.wav").write_bytes(b"not audio")  # A spare takes its place.
    monkeypatch.setattr(clips, "TESS_DIR", tmp_path)

    got = clips.load_clips(8, source="tess")
    names = [c.name for c in got]
    assert len(got) == 8 and names == sorted(names)  # In the corpus's order.
    assert {n[:3] for n in names} == {"OAF", "YAF"}  # Not the first speaker only.
    assert sum(n.startswith("YAF") for n in names) >= 3
    assert "YAF_w04_angry.wav" not in names
