"""Every hostile or unusual upload of tests/hostile.py through the decoder, in-process.

A rejected case must raise the `SERError` subclass with its expected code (any other exception
fails the test); an accepted one must give finite mono float32 audio at 16 kHz that
`clip_inputs` turns into model inputs. Both as bytes and as a file (the service's path).
"""

from __future__ import annotations

import io
import time
import tracemalloc

import hostile
import numpy as np
import pytest
import soundfile as sf

from ser import audio
from ser.audio import SAMPLE_RATE, AudioLimits, load_audio
from ser.errors import AudioTooLongError, SERError
from ser.features import FeatureConfig
from ser.pipeline import clip_inputs

CONFIG = FeatureConfig()
MAX_SECONDS = 1.0  # Any one case, decode + features, on a busy 2-core machine.


@pytest.fixture(scope="module", autouse=True)
def warm() -> None:
    """One-time costs (the mel filterbank, first calls into soxr and scipy) are not per-case time."""
    run(hostile.encode(hostile.tone()))


def run(data) -> np.ndarray:
    y = load_audio(data)
    inputs = clip_inputs(y, CONFIG)
    assert np.isfinite(inputs.x).all()
    return y


@pytest.mark.parametrize("name", list(hostile.rejected()))
def test_rejected_with_its_code(name, tmp_path):
    case = hostile.corpus()[name]
    path = tmp_path / "upload"
    path.write_bytes(case.data)
    for source in (case.data, path):
        started = time.perf_counter()
        with pytest.raises(SERError) as err:  # Anything else propagates and fails the test.
            run(source)
        assert time.perf_counter() - started < MAX_SECONDS
        assert err.value.code == case.expected, err.value.message
        assert err.value.message and str(tmp_path) not in err.value.message
        assert err.value.to_dict() == {"error": case.expected, "message": err.value.message}
        assert 400 <= err.value.http_status < 500


@pytest.mark.parametrize("name", list(hostile.accepted()))
def test_accepted_decodes_to_clean_audio(name, tmp_path):
    case = hostile.corpus()[name]
    path = tmp_path / "upload"
    path.write_bytes(case.data)
    started = time.perf_counter()
    y = run(case.data)
    assert time.perf_counter() - started < MAX_SECONDS
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.isfinite(y).all()
    assert 0.5 * SAMPLE_RATE < len(y) < 3.1 * SAMPLE_RATE  # The clips are 0.75–3 s long.
    np.testing.assert_array_equal(run(path), y)


@pytest.mark.parametrize("name", sorted(hostile.SAME_AS_TONE))
def test_lying_redundant_fields_decode_the_true_samples(name):
    np.testing.assert_array_equal(load_audio(hostile.corpus()[name].data), load_audio(hostile.wav()))


def test_unknown_length_flac_decodes_fully():
    """STREAMINFO total samples 0 ("unknown", as a FLAC written to a pipe) is legal FLAC."""
    case = hostile.corpus()["flac_unknown_length"]
    assert audio.probe(case.data).length_known is False
    np.testing.assert_array_equal(load_audio(case.data), load_audio(hostile.corpus()["flac_16"].data))
    # Bounded all the same: decoding stops at the duration limit.
    with pytest.raises(AudioTooLongError):
        load_audio(case.data, AudioLimits(max_duration_s=1.0))


@pytest.mark.parametrize(
    "name", ["flac_declares_10_hours", "flac_declares_max_samples", "wav_10_minutes_8bit_4khz"]
)
def test_decompression_bomb_is_refused_before_decoding(name, monkeypatch):
    reads = []

    def no_read(*args, **kwargs):
        reads.append(kwargs)
        raise AssertionError("decoding was attempted")

    monkeypatch.setattr(audio.sf.SoundFile, "read", no_read)
    started = time.perf_counter()
    with pytest.raises(AudioTooLongError, match=r"s long; the limit is 30 s"):
        load_audio(hostile.corpus()[name].data)
    assert reads == []
    assert time.perf_counter() - started < 0.1


def test_compressed_silence_of_many_channels_costs_one_channel_of_memory():
    """A 33 KB FLAC of 10 s of 8-channel 384 kHz silence is within every limit; decoding it must
    not hold all eight channels (123 MB of float32) at once: blocks are downmixed as they come."""
    sr, n_ch, seconds = 384_000, 8, 10
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", sr, n_ch, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros((sr, n_ch), np.float32)
        for _ in range(seconds):
            f.write(block)
    data = buf.getvalue()
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        y = load_audio(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(y) == seconds * SAMPLE_RATE
    all_channels = sr * seconds * n_ch * 4
    assert peak < all_channels / 3, f"peak {peak / 1e6:.0f} MB while decoding"


def test_every_error_code_is_exercised():
    codes = {c.expected for c in hostile.rejected().values()}
    assert codes == {
        "invalid_audio",
        "empty_audio",
        "audio_too_long",
        "audio_too_short",
        "unsupported_audio",
        "non_finite_audio",
        "no_speech",
    }
