"""ser.audio: decoding by content, limits before decoding, mono/resample, speech detection."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from conftest import encode, tone

from ser import audio
from ser.audio import SAMPLE_RATE, AudioLimits
from ser.errors import (
    AudioTooLargeError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    InvalidAudioError,
    NonFiniteAudioError,
    NoSpeechError,
    SERError,
    UnsupportedAudioError,
)


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [
        ("WAV", "PCM_U8"),
        ("WAV", "PCM_16"),
        ("WAV", "PCM_24"),
        ("WAV", "PCM_32"),
        ("WAV", "FLOAT"),
        ("WAV", "DOUBLE"),
        ("AIFF", "PCM_16"),
        ("FLAC", "PCM_16"),
        ("FLAC", "PCM_24"),
        ("OGG", "VORBIS"),
        ("MP3", "MPEG_LAYER_III"),
    ],
)
def test_decodes_every_supported_format_by_content(fmt, subtype):
    y = tone(1.0, sr=22_050)
    out = audio.load_audio(encode(y, 22_050, fmt, subtype))
    assert out.dtype == np.float32 and out.ndim == 1
    # Resampled to 16 kHz; lossy codecs may pad a few ms at the ends.
    assert abs(len(out) - SAMPLE_RATE) < 0.08 * SAMPLE_RATE
    assert 0.05 < np.sqrt(np.mean(out**2)) < 0.5


def test_extension_does_not_matter(tmp_path):
    path = tmp_path / "actually_flac.wav"
    path.write_bytes(encode(tone(), format="FLAC"))
    assert audio.probe(path).format == "FLAC"
    assert len(audio.load_audio(path)) == SAMPLE_RATE


def test_stereo_is_downmixed_and_resampled():
    left = tone(1.0, sr=44_100)
    y = np.stack([left, -0.5 * left], axis=1)
    out = audio.load_audio(encode(y, 44_100))
    assert out.ndim == 1 and len(out) == SAMPLE_RATE
    # Mean of the channels: 0.25 × the left channel.
    assert np.sqrt(np.mean(out**2)) == pytest.approx(0.25 * np.sqrt(np.mean(left**2)), rel=0.05)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_mono_decodes_to_exactly_the_stored_samples(subtype):
    data = encode(tone(1.0, sr=22_050), 22_050, "WAV", subtype)
    expected, _ = sf.read(io.BytesIO(data), dtype="float32")
    y, info = audio.decode(data, mono=True)
    assert info.channels == 1 and y.shape == (len(expected), 1)
    assert np.array_equal(y[:, 0], expected)  # Bit for bit: one channel needs no averaging.


def test_dc_offset_is_removed():
    out = audio.load_audio(encode(tone() + 0.3))
    assert abs(out.mean()) < 1e-3


def test_resampling_keeps_a_tone_at_its_frequency():
    sr = 48_000
    t = np.arange(sr) / sr
    out = audio.resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), sr)
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=1)  # 1 Hz bins over 1 s


def test_resampling_matches_soxr_one_shot_call_after_call():
    """The cached streams give what `soxr.resample` gives for each signal alone: no state leaks
    from one clip into the next, whatever their rates and lengths (empty and one-sample too)."""
    import soxr

    rng = np.random.default_rng(0)
    for sr, n in [(24_414, 58_918), (48_000, 7), (24_414, 1_000), (8_000, 0), (44_100, 1), (24_414, 30_001)]:
        y = rng.standard_normal(n).astype(np.float32)
        expected = soxr.resample(y, sr, SAMPLE_RATE, quality="HQ")
        got = audio.resample(y, sr)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_resampler_cache_is_bounded():
    y = np.ones(100, np.float32)
    for sr in range(8_000, 8_000 + 20 * audio.RESAMPLERS_PER_THREAD, 20):
        audio.resample(y, sr)
    assert len(audio._resamplers.streams) == audio.RESAMPLERS_PER_THREAD


def test_header_limits_are_checked_before_decoding(monkeypatch):
    data = encode(tone(5.0))
    calls = []
    monkeypatch.setattr(audio.sf.SoundFile, "read", lambda *a, **k: calls.append(1))
    with pytest.raises(AudioTooLongError, match=r"5\.0 s long; the limit is 2 s"):
        audio.decode(data, AudioLimits(max_duration_s=2))
    assert calls == []


@pytest.mark.parametrize(
    ("limits", "error", "message"),
    [
        (AudioLimits(max_bytes=100), AudioTooLargeError, r"bytes; the limit is 100 bytes"),
        (AudioLimits(min_duration_s=2.0), AudioTooShortError, r"at least 2 s is needed"),
        (AudioLimits(max_channels=1), UnsupportedAudioError, r"2 channels declared; allowed: 1 to 1"),
        (
            AudioLimits(max_sample_rate=8000),
            UnsupportedAudioError,
            r"16000 Hz declared; allowed: 4000 to 8000 Hz",
        ),
    ],
)
def test_limits_name_the_value_and_what_is_allowed(limits, error, message):
    stereo = np.stack([tone(), tone()], axis=1)
    with pytest.raises(error, match=message):
        audio.load_audio(encode(stereo), limits)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", EmptyAudioError, "empty"),
        (
            b"hello, this is plain text and not audio at all" * 20,
            InvalidAudioError,
            "not a supported audio file",
        ),
        (b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 20, InvalidAudioError, "not a supported audio file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, InvalidAudioError, "accepted: WAV, AIFF, FLAC"),
    ],
)
def test_junk_is_rejected_with_a_clear_error(data, error, message):
    with pytest.raises(error, match=message):
        audio.load_audio(data)


def test_truncated_file_decodes_what_is_there_or_fails_cleanly():
    data = encode(tone(2.0))
    with pytest.raises(SERError):
        audio.load_audio(data[:60])  # Header only: too short.
    out = audio.load_audio(data[: len(data) // 2])  # A lying data-chunk size: the half that exists.
    assert 0.9 * SAMPLE_RATE < len(out) < 1.1 * SAMPLE_RATE


def test_non_finite_samples_are_rejected():
    y = tone()
    y[100] = np.nan
    with pytest.raises(NonFiniteAudioError, match="NaN or infinite"):
        audio.load_audio(encode(y, subtype="FLOAT"))


def test_voiced_intervals_find_the_speech_between_silences():
    sr = SAMPLE_RATE
    y = np.concatenate([np.zeros(sr), tone(1.0), np.zeros(sr), tone(0.5), np.zeros(sr // 2)])
    regions = audio.voiced_intervals(y)
    assert len(regions) == 2
    (s1, e1), (s2, e2) = regions
    assert abs(s1 - sr) < 0.1 * sr and abs(e1 - 2 * sr) < 0.1 * sr
    assert abs(s2 - 3 * sr) < 0.1 * sr and abs(e2 - 3.5 * sr) < 0.1 * sr


def test_silence_has_no_speech():
    assert audio.voiced_intervals(np.zeros(SAMPLE_RATE, np.float32)) == []
    with pytest.raises(NoSpeechError, match="silent"):
        audio.trim_silence(np.zeros(SAMPLE_RATE, np.float32))
    with pytest.raises(NoSpeechError):
        audio.normalize_loudness(np.full(SAMPLE_RATE, 1e-6, np.float32))


@pytest.mark.parametrize("gain", [0.03, 1.0, 40.0, 1e20])
def test_loudness_normalisation_reaches_the_target_at_any_gain(gain):
    y = (tone() * gain).astype(np.float32)
    out = audio.normalize_loudness(y)
    assert np.isfinite(out).all()
    level = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert level == pytest.approx(audio.TARGET_DBFS, abs=2.0)  # Quiet troughs fall below the floor.


def test_segment_covers_long_regions_and_keeps_short_ones_whole():
    assert audio.segment([(0, 100)], window=300, hop=150) == [(0, 100)]
    spans = audio.segment([(0, 1000)], window=300, hop=150)
    assert spans[0] == (0, 300) and spans[-1] == (700, 1000)
    assert all(e - s == 300 for s, e in spans)
    assert audio.segment([(0, 50), (100, 400)], window=300, hop=300, min_length=60) == [(100, 400)]
    with pytest.raises(ValueError, match="must be positive"):
        audio.segment([(0, 10)], window=0, hop=1)
