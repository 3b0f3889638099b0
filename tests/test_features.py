"""ser.features: settings, the numpy MFCC against librosa, deltas, CMVN, padding, stacking, NormStats."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
from conftest import tone

from ser.features import (
    FeatureConfig,
    NormStats,
    clip_features,
    dct_matrix,
    frame_features,
    log_mel,
    mfcc,
)
from ser.model import PRESETS

SR = 16_000
SEED = FeatureConfig(kind="mean", cmvn=False, deltas=0, stack=1)


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * SR)) / SR
    return {
        "tone": tone(1.3),
        "white_noise": (0.1 * rng.standard_normal(20_000)).astype(np.float32),
        "chirp": (0.5 * scipy.signal.chirp(t, 100, 1.5, 7000)).astype(np.float32),
        "tone_gap_tone": np.concatenate([tone(0.5), np.zeros(8000, np.float32), tone(0.4, f0=250)]),
        "odd_length": tone(1.0)[:12_345],
    }


SIGNALS = _signals()


# --- FeatureConfig --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "spectrogram"}, r"kind='spectrogram'; allowed: 'frames', 'mean'"),
        ({"deltas": 3}, r"deltas=3; allowed: 0, 1, 2"),
        ({"deltas": -1}, r"deltas=-1; allowed"),
        ({"kind": "mean"}, r"kind='mean' takes no cmvn, deltas, pitch or stacking"),
        ({"kind": "mean", "cmvn": False, "stack": 1, "pitch": True}, r"kind='mean' takes no cmvn"),
        ({"kind": "mean", "cmvn": False, "stack": 1, "deltas": 1}, r"kind='mean' takes no cmvn"),
        ({"kind": "mean", "cmvn": False, "stack": 2}, r"kind='mean' takes no cmvn"),
        ({"stack": 0}, r"stack=0 must be at least 1"),
        ({"n_mfcc": 0}, r"n_mfcc=0 must be in 1\.\.n_mels=64"),
        ({"n_mfcc": 65}, r"n_mfcc=65 must be in 1\.\.n_mels=64"),
        ({"kind": "mean", "cmvn": False, "stack": 1, "cepstra": False}, r"cepstra must be True"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureConfig(**kwargs)


def test_default_config_shapes():
    c = FeatureConfig()
    assert c.window_samples == 48_000
    assert c.max_frames == 94  # 1 + 48000 // 256 = 188 MFCC frames, stacked in pairs.
    assert c.n_features == 80  # 40 MFCCs × 2 stacked frames.
    assert c.input_shape == (94, 80)


def test_config_shapes_follow_deltas_and_stack():
    assert FeatureConfig(deltas=2, stack=1).input_shape == (188, 120)
    assert FeatureConfig(deltas=1, stack=3).input_shape == (63, 240)  # ceil(188 / 3)
    assert FeatureConfig(window_s=1.0, stack=1).input_shape == (63, 40)  # 1 + 16000 // 256


def test_log_mel_frames_have_one_value_per_mel_band():
    assert FeatureConfig(cepstra=False).input_shape == (94, 128)  # 64 bands × 2 stacked frames.
    assert FeatureConfig(cepstra=False, deltas=1, stack=1).n_features == 128


def test_pitch_adds_two_features_per_frame():
    assert FeatureConfig(pitch=True).input_shape == (94, 84)  # (40 + 2) × 2 stacked frames.
    assert FeatureConfig(pitch=True, deltas=1, stack=1).n_features == 82


def test_pitch_features_of_steady_tones_and_a_glide():
    """A steady tone is voiced with its own mean (relative log F0 0); an octave glide spans about
    an octave about its mean; frames line up with the MFCC's."""
    from ser.features import pitch_features

    config = FeatureConfig(pitch=True)
    t = np.arange(int(1.5 * SR)) / SR
    for f0 in (90.0, 220.0, 450.0):
        y = (0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(4 * np.pi * f0 * t)).astype(np.float32)
        p = pitch_features(y, config)
        assert p.shape == (len(mfcc(y, config)), 2)
        assert np.all(p[:, 1] > 0.6) and np.all(p[4:-4, 1] > 0.99) and np.abs(p[4:-4, 0]).max() < 0.02
    glide = 0.3 * np.sin(2 * np.pi * np.cumsum(np.linspace(150.0, 300.0, len(t))) / SR)
    rel = pitch_features(glide.astype(np.float32), config)[4:-4, 0]
    assert 0.8 < rel.max() - rel.min() < 1.05 and abs(rel.mean()) < 0.05
    assert np.all(np.diff(rel) > -0.02)  # Rising throughout.


def test_pitch_features_of_silence_and_noise_are_mostly_unvoiced():
    from ser.features import pitch_features

    config = FeatureConfig(pitch=True)
    assert not pitch_features(np.zeros(SR, np.float32), config).any()
    noise = pitch_features(SIGNALS["white_noise"], config)
    assert (noise[:, 1] > 0).mean() < 0.2


def test_frame_features_with_pitch_append_it_after_cmvn():
    from ser.features import pitch_features

    config = FeatureConfig(pitch=True)
    y = SIGNALS["tone_gap_tone"]
    x = frame_features(y, config)
    assert x.shape == (len(mfcc(y, config)), 42)
    np.testing.assert_allclose(x[:, :40], frame_features(y, dataclasses.replace(config, pitch=False)))
    np.testing.assert_array_equal(x[:, 40:], pitch_features(y, config))


def test_seed_config_shapes():
    assert PRESETS["seed"].features == SEED
    assert SEED.input_shape == (40, 1)
    assert SEED.n_features == 40
    assert SEED.max_frames == 188


@pytest.mark.parametrize(
    "config", [FeatureConfig(), SEED, FeatureConfig(deltas=2, window_s=2.5, fmax=7600.0)]
)
def test_config_dict_round_trip(config):
    data = config.to_dict()
    assert data == dataclasses.asdict(config)
    assert FeatureConfig.from_dict(data) == config


def test_config_from_dict_rejects_unknown_settings():
    data = {**FeatureConfig().to_dict(), "n_chroma": 12}
    with pytest.raises(ValueError, match=r"unknown feature settings \['n_chroma'\]"):
        FeatureConfig.from_dict(data)


def test_config_from_dict_validates():
    with pytest.raises(ValueError, match="deltas=5"):
        FeatureConfig.from_dict({**FeatureConfig().to_dict(), "deltas": 5})


# --- MFCC and deltas against librosa --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_mfcc_matches_librosa(name):
    import librosa

    y = SIGNALS[name]
    ref = librosa.feature.mfcc(
        y=y, sr=SR, n_mfcc=40, n_fft=512, hop_length=256, win_length=512, n_mels=64, fmin=50, fmax=8000
    ).T
    out = mfcc(y, FeatureConfig())
    assert out.dtype == np.float32
    assert out.shape == ref.shape == (1 + len(y) // 256, 40)
    assert np.abs(out - ref).max() / np.abs(ref).max() < 1e-5


@pytest.mark.parametrize("name", sorted(SIGNALS))
def test_log_mel_matches_librosa_and_feeds_the_frames(name):
    import librosa

    y = SIGNALS[name]
    power = librosa.feature.melspectrogram(
        y=y, sr=SR, n_fft=512, hop_length=256, win_length=512, n_mels=64, fmin=50, fmax=8000
    )
    ref = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=80.0).T
    out = log_mel(y, FeatureConfig())
    assert out.dtype == np.float32
    assert out.shape == ref.shape == (1 + len(y) // 256, 64)
    assert np.abs(out - ref).max() < 1e-3  # dB
    config = FeatureConfig(cepstra=False, cmvn=False)
    np.testing.assert_array_equal(frame_features(y, config), out)


@pytest.mark.parametrize(("n_mels", "n_mfcc"), [(64, 40), (40, 40), (128, 13)])
def test_dct_matrix_is_scipys_orthonormal_dct(n_mels, n_mfcc):
    import scipy.fft

    x = np.random.default_rng(0).normal(size=(50, n_mels)).astype(np.float32)
    ref = scipy.fft.dct(x.astype(np.float64), type=2, norm="ortho", axis=-1)[:, :n_mfcc]
    np.testing.assert_allclose(x @ dct_matrix(n_mels, n_mfcc), ref, atol=2e-5)


def test_serving_features_import_no_scipy():
    """scipy's import is a quarter second of each worker's cold start: MFCCs without deltas skip it
    (given the stored filterbank, as the service registers it: librosa's own needs scipy)."""
    code = (
        "import sys, numpy as np; from ser.features import FeatureConfig, register_mel_filterbank, warm_up; "
        "c = FeatureConfig(); register_mel_filterbank(c, np.ones((c.n_mels, 1 + c.n_fft // 2))); "
        "warm_up(c); print([m for m in sys.modules if m.startswith(('scipy', 'librosa'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("deltas", [1, 2])
@pytest.mark.parametrize("name", ["tone", "white_noise", "chirp"])
def test_deltas_match_librosa(name, deltas):
    import librosa

    config = FeatureConfig(deltas=deltas, cmvn=False, stack=1)
    y = SIGNALS[name]
    m = mfcc(y, config)
    x = frame_features(y, config)
    assert x.shape == (len(m), 40 * (1 + deltas))
    np.testing.assert_array_equal(x[:, :40], m)
    for order in range(1, deltas + 1):
        ref = librosa.feature.delta(m.T, order=order).T
        got = x[:, 40 * order : 40 * (order + 1)]
        assert np.abs(got - ref).max() / np.abs(ref).max() < 1e-5, f"order {order}"


def test_deltas_of_a_very_short_clip_are_zero():
    config = FeatureConfig(deltas=2, cmvn=False, stack=1)
    x = frame_features(tone(0.02), config)  # 2 frames: too few for any Savitzky-Golay window.
    assert x.shape == (2, 120)
    assert not x[:, 40:].any()


def test_no_deltas_means_mfcc_only():
    y = SIGNALS["tone"]
    np.testing.assert_array_equal(
        frame_features(y, FeatureConfig(cmvn=False, stack=1)), mfcc(y, FeatureConfig())
    )


@pytest.mark.parametrize("deltas", [0, 2])
def test_cmvn_gives_zero_mean_unit_variance_columns(deltas):
    x = frame_features(SIGNALS["chirp"], FeatureConfig(deltas=deltas, stack=1))
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-3)


# --- one model input ------------------------------------------------------------------------


def test_clip_features_pads_with_exact_zeros():
    config = FeatureConfig(stack=1)
    y = tone(1.0)
    x, n = clip_features(y, config)
    assert x.shape == config.input_shape == (188, 40)
    assert x.dtype == np.float32
    assert n == 1 + len(y) // 256 == 63
    np.testing.assert_array_equal(x[:n], frame_features(y, config))
    assert (x[n:] == 0.0).all()
    assert (x[:n] != 0.0).any(axis=1).all()  # Real frames are never all zero: the mask relies on it.


def test_clip_features_full_window_fills_every_step():
    config = FeatureConfig()
    x, n = clip_features(tone(3.0), config)
    assert n == config.max_frames == 94
    assert (x != 0.0).any(axis=1).all()


def test_frame_stacking_concatenates_consecutive_frames():
    config = FeatureConfig(stack=2)
    unstacked = FeatureConfig(stack=1)
    for seconds in (1.0, 1.016):  # 63 frames (odd: the last is repeated) and 64 frames (even).
        y = tone(seconds)
        frames = frame_features(y, unstacked)
        x, n = clip_features(y, config)
        assert x.shape == (94, 80)
        assert n == -(-len(frames) // 2)
        for k in range(n):
            last = min(2 * k + 1, len(frames) - 1)
            np.testing.assert_array_equal(x[k], np.concatenate([frames[2 * k], frames[last]]))
        assert (x[n:] == 0.0).all()


def test_stack_three():
    config = FeatureConfig(stack=3, deltas=1)
    y = tone(0.5)
    frames = frame_features(y, FeatureConfig(stack=1, deltas=1))
    x, n = clip_features(y, config)
    assert x.shape == config.input_shape == (63, 240)
    assert n == -(-len(frames) // 3)
    np.testing.assert_array_equal(x[1], np.concatenate(frames[3:6]))


@pytest.mark.parametrize("seconds", [0.3, 1.2, 3.0])
def test_seed_features_are_the_mean_mfcc_and_all_real(seconds):
    y = tone(seconds)
    x, n = clip_features(y, SEED)
    assert x.shape == (40, 1)
    assert n == 40  # All 40 steps are real, however few MFCC frames the clip has.
    np.testing.assert_allclose(x[:, 0], mfcc(y, SEED).mean(axis=0), rtol=1e-6, atol=1e-5)


def test_seed_features_of_a_short_clip_survive_normalisation():
    # Regression: the MFCC frame count (19 for 0.3 s) was returned as the length, and
    # NormStats.apply then zeroed coefficients 19..39 of every clip shorter than 0.64 s.
    x, n = clip_features(tone(0.3), SEED)
    out = NormStats(mean=(0.0,), std=(1.0,)).apply(x[None], np.array([n]))
    np.testing.assert_array_equal(out[0], x)


@pytest.mark.parametrize("config", [FeatureConfig(), SEED])
def test_too_long_input_is_refused(config):
    with pytest.raises(ValueError, match=r"48001 samples given; one input covers at most 48000"):
        clip_features(np.zeros(48_001, np.float32), config)


# --- NormStats ------------------------------------------------------------------------------


def _batch(config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    clips = [tone(0.6, f0=150), tone(1.4, f0=220, amp=0.1), SIGNALS["white_noise"], tone(3.0, f0=300)]
    feats = [clip_features(y, config) for y in clips]
    return np.stack([f for f, _ in feats]), np.array([n for _, n in feats])


def test_norm_stats_fit_uses_only_real_frames():
    x, lengths = _batch(FeatureConfig())
    stats = NormStats.fit(x, lengths)
    real = np.concatenate([xi[:n] for xi, n in zip(x, lengths, strict=True)])
    assert len(stats.mean) == len(stats.std) == 80
    np.testing.assert_allclose(stats.mean, real.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.std, real.std(axis=0) + 1e-5, rtol=1e-5)


def test_norm_stats_apply_standardises_real_frames_and_keeps_padding_zero():
    x, lengths = _batch(FeatureConfig())
    assert lengths.min() < x.shape[1]  # Some padding to protect.
    stats = NormStats.fit(x, lengths)
    out = stats.apply(x, lengths)
    assert out.dtype == np.float32 and out.shape == x.shape
    for xi, oi, n in zip(x, out, lengths, strict=True):
        assert (oi[n:] == 0.0).all()
        np.testing.assert_allclose(oi[:n], (xi[:n] - np.array(stats.mean)) / np.array(stats.std), atol=1e-4)
    real = np.concatenate([oi[:n] for oi, n in zip(out, lengths, strict=True)])
    np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(real.std(axis=0), 1.0, atol=1e-3)
    np.testing.assert_array_equal(x, _batch(FeatureConfig())[0])  # The input is not modified.


def test_norm_stats_on_mean_features():
    x, lengths = _batch(SEED)
    assert (lengths == x.shape[1]).all()  # kind="mean": every step (coefficient) is real.
    stats = NormStats.fit(x, lengths)
    assert len(stats.mean) == 1
    out = stats.apply(x, lengths)
    assert out.shape == (4, 40, 1)
    np.testing.assert_allclose(out.mean(), 0.0, atol=1e-5)


def test_norm_stats_dict_round_trip():
    x, lengths = _batch(FeatureConfig())
    stats = NormStats.fit(x, lengths)
    data = stats.to_dict()
    assert set(data) == {"mean", "std", "per_step"} and isinstance(data["mean"], list)
    again = NormStats.from_dict(data)
    assert again == stats
    np.testing.assert_array_equal(again.apply(x, lengths), stats.apply(x, lengths))


def test_per_step_norm_stats_standardise_each_coefficient_of_the_mean_feature():
    config = FeatureConfig(kind="mean", cmvn=False, stack=1)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((50, 40, 1)) * np.arange(1, 41)[None, :, None] - 300).astype(np.float32)
    stats = NormStats.fit(x, np.full(50, 40), per_step=True)
    assert len(stats.mean) == config.input_shape[0]
    out = stats.apply(x, np.full(50, 40))
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=0), 1, atol=1e-3)
    assert NormStats.from_dict(stats.to_dict()) == stats
