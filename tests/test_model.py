"""ser.model: the frequency-convolution front end keeps the padding masked and refuses MFCCs;
an ensemble model averages its members."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import tone

from ser.features import FeatureConfig, clip_features
from ser.model import PRESETS, average_models, build_model

LOG_MEL = FeatureConfig(cepstra=False)
CONV = dataclasses.replace(PRESETS["bilstm"], name="conv", features=LOG_MEL, freq_conv=8)


def test_frequency_conv_output_is_zero_exactly_on_padded_steps():
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(CONV)
    x, n = clip_features(tone(1.3, f0=200), LOG_MEL)
    front = keras.Model(model.input, model.get_layer("restack").output)
    steps = np.asarray(front(x[None]))[0]
    assert steps.shape == (LOG_MEL.max_frames, 64 // 4 * 8)
    assert not np.any(steps[n:])  # The Masking layer after it drops exactly the padding ...
    assert np.all(np.any(steps[:n] != 0, axis=1))  # ... and keeps every real step.


def test_frequency_conv_prediction_ignores_what_lies_beyond_the_clip():
    """A clip padded in its input answers as the same clip cut to its real steps would:
    the masked mean over time sees only real steps."""
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(CONV)
    x, n = clip_features(tone(0.9, f0=180), LOG_MEL)
    short = dataclasses.replace(
        CONV, features=dataclasses.replace(LOG_MEL, window_s=(2 * n - 1) * LOG_MEL.hop_length / 16_000)
    )
    cut = build_model(short)
    cut.set_weights(model.get_weights())
    assert short.features.max_frames == n
    np.testing.assert_allclose(np.asarray(model(x[None])), np.asarray(cut(x[None, :n])), atol=1e-5)


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (FeatureConfig(), "needs plain log-mel frames"),
        (FeatureConfig(cepstra=False, pitch=True), "needs plain log-mel frames"),
        (FeatureConfig(cepstra=False, n_mels=62, n_mfcc=40), r"freq_pool=4 must divide n_mels=62"),
    ],
)
def test_frequency_conv_refuses_features_it_cannot_convolve(features, message):
    with pytest.raises(ValueError, match=message):
        build_model(dataclasses.replace(CONV, features=features))


def test_label_smoothing_reaches_the_loss():
    import keras

    assert PRESETS["bilstm"].label_smoothing == 0.1  # The default, chosen by measurement (README).
    smoothed = build_model(PRESETS["bilstm"])
    y_true, y_pred = keras.ops.convert_to_tensor([[0.0, 1.0] + [0.0] * 5]), keras.ops.full((1, 7), 1 / 7)
    assert float(smoothed.loss(y_true, y_pred)) == pytest.approx(np.log(7), rel=1e-5)  # Uniform: any targets.
    confident = keras.ops.convert_to_tensor([[1e-6, 1 - 6e-6] + [1e-6] * 5])
    plain = build_model(dataclasses.replace(PRESETS["bilstm"], label_smoothing=0.0))
    assert float(smoothed.loss(y_true, confident)) > 5 * float(plain.loss(y_true, confident))


def test_ensemble_model_is_the_mean_of_its_members_and_survives_saving(tmp_path):
    import keras

    from ser.export import probe_inputs

    members = []
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        members.append(build_model(PRESETS["bilstm"]))
    ensemble = average_models(members)
    x = probe_inputs(PRESETS["bilstm"].features.input_shape)
    expected = np.mean([np.asarray(m(x)) for m in members], axis=0)
    np.testing.assert_allclose(ensemble(x), expected, atol=1e-6)
    assert ensemble.layers[-1].name == "probabilities"
    ensemble.save(tmp_path / "e.keras")
    reloaded = keras.models.load_model(tmp_path / "e.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(x), expected, atol=1e-6)


def test_ensemble_refuses_one_model_and_mismatched_inputs():
    seed = build_model(PRESETS["seed"])
    with pytest.raises(ValueError, match="at least 2 models, got 1"):
        average_models([seed])
    with pytest.raises(ValueError, match="members take different inputs"):
        average_models([seed, build_model(PRESETS["bilstm"])])
