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


def test_clips_cli_writes_the_benchmark_bodies(tmp_path, monkeypatch):
    """`python -m loadtests.clips --out DIR`: the files `make bench` sends, for bench_inproc."""
    from loadtests import clips

    monkeypatch.setattr(clips, "TESS_DIR", tmp_path / "no-tess")
    monkeypatch.setattr(clips, "synthetic_corpus", lambda: _tiny_corpus(tmp_path / "corpus"))
    paths = clips.main(["--out", str(tmp_path / "bodies"), "-n", "3", "--format", "FLAC"])
    assert [p.name for p in paths] == ["00.flac", "01.flac", "02.flac"]
    for p in paths:
        info = sf.info(p)
        assert info.format == "FLAC" and info.frames == 16000


def _tiny_corpus(folder):
    folder.mkdir(exist_ok=True)
    for i in range(6):
        sf.write(folder / f"SYA_w{i}_angry.wav", np.full(16000, 0.1, np.float32), 16000)
    return folder
