"""ser.pipeline: which stretches of a recording become model inputs, and how segments combine."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import tone

from ser.audio import voiced_intervals
from ser.errors import NoSpeechError
from ser.features import FeatureConfig
from ser.model import PRESETS
from ser.pipeline import MIN_SEGMENT_S, UTTERANCE_PAUSE_S, clip_inputs, timeline_inputs, utterances
from ser.predictor import combine_segments

SR = 16_000
CONFIG = FeatureConfig()
WINDOW = CONFIG.window_samples  # 48000


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def two_phrases() -> np.ndarray:
    """0.5 s silence, 2 s tone, 1.5 s silence, 1.2 s tone, 0.3 s silence."""
    return np.concatenate([silence(0.5), tone(2.0), silence(1.5), tone(1.2, f0=240), silence(0.3)])


# --- clip_inputs ----------------------------------------------------------------------------


def test_short_clip_gives_one_input():
    y = np.concatenate([silence(0.4), tone(1.5), silence(0.4)])
    inputs = clip_inputs(y, CONFIG)
    assert inputs.x.shape == (1, *CONFIG.input_shape)
    assert inputs.x.dtype == np.float32
    assert len(inputs.spans) == len(inputs.lengths) == 1
    (start, end) = inputs.spans[0]
    # The span is the speech, first to last voiced sample (with the detector's padding).
    assert abs(start - 0.4 * SR) < 0.1 * SR and abs(end - 1.9 * SR) < 0.1 * SR
    assert inputs.lengths[0] == -(-(1 + (end - start) // CONFIG.hop_length) // CONFIG.stack)
    assert inputs.speech_samples == end - start


def test_short_pauses_stay_inside_one_input():
    y = np.concatenate([silence(0.5), tone(1.0), silence(0.35), tone(1.0, f0=240), silence(0.5)])
    regions = voiced_intervals(y)
    assert len(regions) == 2  # Two voiced regions, 0.25 s apart once padded: one utterance.
    inputs = clip_inputs(y, CONFIG)
    assert inputs.spans == [(regions[0][0], regions[-1][1])]
    assert inputs.speech_samples == sum(e - s for s, e in regions)


def test_long_pauses_end_an_utterance_and_no_window_straddles_one():
    y = two_phrases()  # 1.5 s apart; 4.2 s from the first speech to the last: above one window.
    regions = voiced_intervals(y)
    assert len(regions) == 2 and regions[1][0] - regions[0][1] >= UTTERANCE_PAUSE_S * SR
    assert utterances(regions, SR) == regions
    inputs = clip_inputs(y, CONFIG)
    assert inputs.spans == regions  # Each phrase shorter than a window: one input each.
    assert inputs.speech_samples == sum(e - s for s, e in regions)
    long_pause = np.concatenate([tone(4.0), silence(1.0), tone(1.0)])
    (a0, a1), (b0, b1) = voiced_intervals(long_pause)
    spans = clip_inputs(long_pause, CONFIG).spans
    assert spans[-1] == (b0, b1) and all(a0 <= s < e <= a1 for s, e in spans[:-1])  # None across.


def test_long_clip_gives_half_overlapping_windows_that_cover_the_end():
    y = np.concatenate([silence(1.0), tone(7.0), silence(0.5)])
    inputs = clip_inputs(y, CONFIG)
    spans = [(int(s), int(e)) for s, e in inputs.spans]
    (speech_start, speech_end) = voiced_intervals(y)[0]
    assert len(spans) == 4
    assert spans[0][0] == speech_start
    assert spans[-1][1] == speech_end  # The last window ends exactly at the end of the speech.
    assert all(e - s == WINDOW for s, e in spans)
    starts = [s for s, _ in spans]
    assert starts[:3] == [speech_start + k * WINDOW // 2 for k in range(3)]  # Half-window hop.
    assert 0 < starts[3] - starts[2] <= WINDOW // 2  # The extra window overlaps more, never less.
    assert inputs.x.shape == (4, *CONFIG.input_shape)
    assert (inputs.lengths == CONFIG.max_frames).all()


@pytest.mark.parametrize("y", [silence(2.0), np.full(SR, 1e-4, np.float32)], ids=["zeros", "-80dBFS"])
def test_silence_raises_no_speech(y):
    with pytest.raises(NoSpeechError, match="no speech found"):
        clip_inputs(y, CONFIG)


# --- timeline_inputs ------------------------------------------------------------------------


def test_timeline_spans_lie_inside_voiced_regions():
    y = two_phrases()
    regions = voiced_intervals(y)
    inputs = timeline_inputs(y, CONFIG, window_s=1.0, hop_s=0.5)
    assert len(inputs.spans) == len(inputs.x) == len(inputs.lengths) > 2
    for start, end in inputs.spans:
        assert any(r0 <= start < end <= r1 for r0, r1 in regions), (start, end)
        assert MIN_SEGMENT_S * SR <= end - start <= SR
    for r0, r1 in regions:  # Every region is covered from its start to its end.
        assert any(s == r0 for s, _ in inputs.spans)
        assert any(e == r1 for _, e in inputs.spans)
    assert inputs.speech_samples == sum(e - s for s, e in regions)


def test_timeline_drops_stretches_that_are_too_short():
    y = np.concatenate([silence(0.5), tone(0.1), silence(0.5)])
    assert voiced_intervals(y)  # Speech is found, but shorter than the shortest segment.
    with pytest.raises(NoSpeechError, match=re.escape(f"at least {MIN_SEGMENT_S} s long")):
        timeline_inputs(y, CONFIG, window_s=1.0, hop_s=0.5)
    assert len(clip_inputs(y, CONFIG).spans) == 1  # A whole clip is still classified.


@pytest.mark.parametrize(
    ("window_s", "hop_s", "message"),
    [
        (0.0, 0.5, "window_s=0.0 must be in (0, 3.0] seconds"),
        (-1.0, 0.5, "window_s=-1.0 must be in (0, 3.0] seconds"),
        (3.5, 0.5, "window_s=3.5 must be in (0, 3.0] seconds"),
        (1.0, 0.0, "hop_s=0.0 must be in (0, window_s=1.0] seconds"),
        (1.0, 1.5, "hop_s=1.5 must be in (0, window_s=1.0] seconds"),
    ],
)
def test_timeline_validates_window_and_hop(window_s, hop_s, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        timeline_inputs(two_phrases(), CONFIG, window_s=window_s, hop_s=hop_s)


def test_timeline_on_silence_raises_no_speech():
    with pytest.raises(NoSpeechError, match="no speech found"):
        timeline_inputs(silence(2.0), CONFIG, window_s=1.0, hop_s=0.5)


# --- loudness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [CONFIG, PRESETS["seed"].features], ids=["frames", "mean"])
def test_inputs_do_not_depend_on_loudness(config):
    y = np.concatenate(
        [silence(0.3), tone(1.2, amp=0.5), silence(0.6), tone(0.9, f0=230, amp=0.5), silence(0.3)]
    )
    quiet = clip_inputs(y * np.float32(0.1), config)
    loud = clip_inputs(y * np.float32(10.0), config)
    assert quiet.spans == loud.spans
    np.testing.assert_array_equal(quiet.lengths, loud.lengths)
    scale = np.abs(loud.x).max()
    assert np.abs(quiet.x - loud.x).max() < 1e-3 * scale
    quiet_t = timeline_inputs(y * np.float32(0.1), config, window_s=1.0, hop_s=0.5)
    loud_t = timeline_inputs(y * np.float32(10.0), config, window_s=1.0, hop_s=0.5)
    assert quiet_t.spans == loud_t.spans
    assert np.abs(quiet_t.x - loud_t.x).max() < 1e-3 * np.abs(loud_t.x).max()


# --- combining segment probabilities ---------------------------------------------------------


def test_combine_segments_weights_by_length():
    probs = np.array([[0.8, 0.2, 0.0], [0.0, 0.5, 0.5], [0.2, 0.2, 0.6]], np.float32)
    out = combine_segments(probs, np.array([1, 1, 2]))
    assert out.dtype == np.float32 and out.shape == (3,)
    np.testing.assert_allclose(out, [(0.8 + 0.0 + 0.4) / 4, (0.2 + 0.5 + 0.4) / 4, (0.0 + 0.5 + 1.2) / 4])
    assert out.sum() == pytest.approx(1.0)


def test_combine_segments_equal_weights_is_the_mean_and_scale_free():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(7), size=5).astype(np.float32)
    np.testing.assert_allclose(combine_segments(probs, np.ones(5)), probs.mean(axis=0), rtol=1e-6)
    weights = np.array([48_000, 48_000, 30_000, 12_000, 4_000])
    np.testing.assert_allclose(combine_segments(probs, weights), combine_segments(probs, weights / 4000))
    np.testing.assert_allclose(combine_segments(probs[:1], np.array([123])), probs[0])


def test_combine_segments_zero_weight_ignores_a_segment():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    np.testing.assert_array_equal(combine_segments(probs, np.array([3, 0])), [1.0, 0.0])
