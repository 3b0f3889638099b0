"""ser.export + ser.runtime: the LiteRT export answers as the Keras model; serving needs no TensorFlow.

The export is checked on untrained models of both presets (random weights; no training, ~30 s of
conversion), on the model `training.train` stores (slow), and on real TESS clips when present.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, tone

import ser.features
from ser.export import ExportError, convert, export_model_files, probe_inputs, unrolled_copy
from ser.features import NormStats, clip_features, mel_filterbank, mfcc, register_mel_filterbank
from ser.labels import EMOTIONS
from ser.model import build_model, get_preset
from ser.predictor import MAX_BATCH, Predictor
from ser.runtime import LiteRTPredictor, LiteRTRunner, load_predictor
from ser.spec import LITERT_FILE, MEL_FILE, MODEL_FILE, ModelSpec

TOLERANCE = 1e-4  # The bar for any probability; the exports measure ~3e-8.


def _clips() -> list[np.ndarray]:
    """Synthetic audio of many lengths: one padded input, several segments, silence inside."""
    rng = np.random.default_rng(1)
    return [
        tone(0.4, f0=110),
        tone(1.3, f0=220, amp=0.5),
        tone(2.95, f0=150),
        np.concatenate([tone(0.8), np.zeros(12_000, np.float32), tone(1.1, f0=300)]),
        tone(7.7, f0=90, amp=0.2),
        (0.05 * rng.standard_normal(30_000)).astype(np.float32) + tone(1.875, f0=260),
    ]


def _probs(predictions) -> np.ndarray:
    return np.array([list(p.probabilities.values()) for p in predictions])


@pytest.fixture(autouse=True)
def _no_registered_mel():
    """Registered filterbanks are process-wide: start and end every test without any."""
    ser.features._REGISTERED_MEL.clear()
    yield
    ser.features._REGISTERED_MEL.clear()


@pytest.fixture(scope="module", params=["bilstm", "seed"])
def exported(request, tmp_path_factory):
    """(Keras model, spec, folder with model.tflite + mel_basis.npy, metadata's runtime) per preset."""
    import keras

    keras.utils.set_random_seed(0)
    preset = get_preset(request.param)
    model = build_model(preset)
    feats = [clip_features(c[: preset.features.window_samples], preset.features) for c in _clips()]
    x, lengths = np.stack([f for f, _ in feats]), np.array([n for _, n in feats])
    norm = NormStats.fit(x, lengths, per_step=preset.features.kind == "mean")
    spec = ModelSpec(EMOTIONS, preset.features, norm, preset.name)
    folder = tmp_path_factory.mktemp(f"export-{preset.name}")
    runtime = export_model_files(model, spec, folder)
    return model, spec, folder, runtime


def test_export_writes_files_and_metadata(exported):
    _, _, folder, runtime = exported
    assert (folder / LITERT_FILE).is_file() and (folder / MEL_FILE).is_file()
    assert runtime["format"] == "litert" and runtime["file"] == LITERT_FILE
    assert runtime["batch"] == "dynamic"  # The unrolled copy converted and matched.
    assert runtime["max_abs_diff"] <= TOLERANCE
    assert runtime["mel_file"] == MEL_FILE
    for package in ("tensorflow", "keras", "ai_edge_litert"):
        assert runtime[package], package


def test_litert_matches_keras_on_synthetic_clips(exported):
    model, spec, folder, _ = exported
    keras_p, litert_p = Predictor(model, spec), LiteRTPredictor(folder / LITERT_FILE, spec)
    expected, got = _probs(keras_p.predict_many(_clips())), _probs(litert_p.predict_many(_clips()))
    assert np.abs(got - expected).max() <= TOLERANCE
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("n", [1, 5, MAX_BATCH, MAX_BATCH + 7, 2])  # Pads, chunks, pads again.
def test_litert_matches_keras_on_padded_batches(exported, n):
    model, spec, folder, _ = exported
    predictor = LiteRTPredictor(folder / LITERT_FILE, spec)
    x = probe_inputs(spec.features.input_shape, n=n, seed=n)
    assert np.abs(predictor.forward(x) - np.asarray(model(x, training=False))).max() <= TOLERANCE


def test_runner_pads_to_bucket_interpreters_made_once(exported):
    """Batches run zero-padded on one interpreter per power-of-two size; rows answer as run alone."""
    model, spec, folder, _ = exported
    runner = LiteRTRunner(folder / LITERT_FILE, max_batch=8)
    assert [runner.bucket(n) for n in (1, 2, 3, 5, 8, 9, 100)] == [1, 2, 4, 8, 8, 8, 8]
    x = probe_inputs(spec.features.input_shape, n=11, seed=3)
    alone = np.concatenate([runner.run(x[i : i + 1]) for i in range(len(x))])
    for n in (3, 11, 3, 5):  # 3 → 4; 11 → 8 + 4 (4 made once, then reused).
        assert np.abs(runner.run(x[:n]) - alone[:n]).max() <= 1e-5
    assert sorted(runner._buckets) == [1, 4, 8]
    assert runner.run(x[:0]).shape == (0, len(spec.labels))
    assert np.abs(alone - np.asarray(model(x, training=False))).max() <= TOLERANCE


def test_runner_with_or_without_xnnpack_answers_the_same(exported):
    _, spec, folder, _ = exported
    x = probe_inputs(spec.features.input_shape, n=6, seed=4)
    plain = LiteRTRunner(folder / LITERT_FILE, xnnpack_from=1 << 30)
    xnn = LiteRTRunner(folder / LITERT_FILE, xnnpack_from=1)
    assert np.abs(plain.run(x) - xnn.run(x)).max() <= TOLERANCE
    assert np.abs(plain.run(x[:1]) - xnn.run(x[:1])).max() <= TOLERANCE


@pytest.mark.parametrize("n", [1, 6, 70])  # 70: a bucket of 64, then one of 8.
def test_compiled_and_interpreter_engines_answer_the_same(exported, n):
    _, spec, folder, _ = exported
    x = probe_inputs(spec.features.input_shape, n=n, seed=5)
    compiled = LiteRTRunner(folder / LITERT_FILE)  # SER_LITERT_ENGINE unset: compiled.
    interpreter = LiteRTRunner(folder / LITERT_FILE, engine="interpreter")
    assert (compiled.engine, interpreter.engine) == ("compiled", "interpreter")
    assert np.abs(compiled.run(x) - interpreter.run(x)).max() <= TOLERANCE


def test_engine_setting_and_fallback(exported, monkeypatch, caplog):
    _, spec, folder, _ = exported
    monkeypatch.setenv("SER_LITERT_ENGINE", "interpreter")
    assert LiteRTRunner(folder / LITERT_FILE).engine == "interpreter"
    monkeypatch.setenv("SER_LITERT_ENGINE", "gpu")
    with pytest.raises(ValueError, match="SER_LITERT_ENGINE='gpu'; allowed: compiled, interpreter"):
        LiteRTRunner(folder / LITERT_FILE)
    monkeypatch.delenv("SER_LITERT_ENGINE")

    def broken():
        raise RuntimeError("no LiteRT environment here")

    monkeypatch.setattr("ser.runtime._compiled_environment", broken)
    with caplog.at_level(logging.WARNING, logger="ser.runtime"):
        runner = LiteRTRunner(folder / LITERT_FILE)
    assert runner.engine == "interpreter"
    assert "no LiteRT environment here" in caplog.text and "using its Interpreter" in caplog.text
    x = probe_inputs(spec.features.input_shape, n=3)
    plain = LiteRTRunner(folder / LITERT_FILE, engine="interpreter")
    assert np.abs(runner.run(x) - plain.run(x)).max() <= TOLERANCE


def test_litert_native_log_goes_to_debug_and_other_stderr_passes(exported, capfd, caplog):
    """LiteRT's C++ INFO lines (each accelerator it probes) stay out of the server's log."""
    from ser.runtime import _native_log_to_debug

    _, spec, folder, _ = exported
    with caplog.at_level(logging.DEBUG, logger="ser.runtime"):
        runner = LiteRTRunner(folder / LITERT_FILE)
        runner.run(probe_inputs(spec.features.input_shape, n=20))  # A new bucket, made now.
        with _native_log_to_debug():
            os.write(2, b"INFO: [x.cc:1] a LiteRT line\nanother thread's line\n")
    err = capfd.readouterr().err
    assert "INFO: [" not in err and "Creating LiteRT environment" not in err
    assert err == "another thread's line\n"
    assert "litert: INFO: [x.cc:1] a LiteRT line" in caplog.text
    assert "litert: INFO: [environment.cc" in caplog.text  # What the runner's start logged.


def test_unrolled_copy_keeps_the_masked_mean():
    """Keras 3.15's unrolled backward RNN zeroes outputs with the un-reversed mask: the copy avoids it."""
    import keras

    keras.utils.set_random_seed(1)
    model = build_model(get_preset("bilstm"))
    x = probe_inputs(model.input_shape[1:], n=6)
    expected = np.asarray(model(x, training=False))
    assert np.abs(np.asarray(unrolled_copy(model)(x, training=False)) - expected).max() <= 1e-6


def test_batch_one_export_runs_row_by_row(exported):
    model, spec, _, _ = exported
    runner = LiteRTRunner(model_content=convert(model, spec.features.input_shape, batch=1))
    assert not runner.dynamic
    x = probe_inputs(spec.features.input_shape, n=3)
    assert np.abs(runner.run(x) - np.asarray(model(x, training=False))).max() <= TOLERANCE


def test_failed_export_leaves_keras_only(exported, tmp_path, monkeypatch, capsys):
    model, spec, _, _ = exported

    def fail(*args, **kwargs):
        raise ExportError("no LiteRT export matched the Keras model: test")

    monkeypatch.setattr("ser.export.export_litert", fail)
    runtime = export_model_files(model, spec, tmp_path)
    assert "file" not in runtime and not (tmp_path / LITERT_FILE).exists()
    assert (tmp_path / MEL_FILE).is_file()  # Features still need no librosa.
    assert "served with Keras" in capsys.readouterr().out


# --- the mel filterbank stored with the model -----------------------------------------------------
def test_stored_mel_filterbank_is_librosas(exported):
    import librosa

    _, spec, folder, _ = exported
    f = spec.features
    stored = np.load(folder / MEL_FILE)
    ref = librosa.filters.mel(sr=f.sample_rate, n_fft=f.n_fft, n_mels=f.n_mels, fmin=f.fmin, fmax=f.fmax)
    assert stored.dtype == np.float32 and stored.shape == ref.shape
    assert np.abs(stored - ref).max() <= 1e-7 * max(1.0, np.abs(ref).max())


def test_registered_filterbank_is_used_and_mfcc_unchanged(exported):
    _, spec, folder, _ = exported
    f = spec.features
    y = tone(1.7, f0=170)
    before = mfcc(y, f)
    register_mel_filterbank(f, np.load(folder / MEL_FILE))
    assert (
        mel_filterbank(f.sample_rate, f.n_fft, f.n_mels, f.fmin, f.fmax)
        is ser.features._REGISTERED_MEL[(f.sample_rate, f.n_fft, f.n_mels, float(f.fmin), float(f.fmax))]
    )
    assert np.abs(mfcc(y, f) - before).max() <= 1e-4
    with pytest.raises(ValueError, match="mel filterbank of shape"):
        register_mel_filterbank(f, np.zeros((3, 3)))


def test_window_is_scipys_periodic_hann():
    import scipy.signal

    from ser.features import _window

    w = _window(400, 512)
    ref = np.pad(scipy.signal.get_window("hann", 400, fftbins=True), (56, 56))
    assert w.dtype == np.float32 and np.abs(w - ref).max() <= 1e-7


# --- through the model store: runtime choice, fallback, serving with neither TF nor librosa -------
def _store(home: Path, model, spec: ModelSpec, folder: Path | None, runtime: dict | None) -> str:
    import bentoml

    meta = spec.to_metadata()
    if runtime is not None:
        meta["runtime"] = runtime
    with bentoml.models.create("ser_lstm", metadata=meta) as ref:
        model.save(ref.path_of(MODEL_FILE))
        if folder is not None:
            for name in (LITERT_FILE, MEL_FILE):
                shutil.copyfile(folder / name, ref.path_of(name))
    return str(ref.tag)


def test_runtime_choice_and_fallback(exported, bentoml_home, monkeypatch, caplog):
    import bentoml

    from ser.export import reexport

    model, spec, folder, runtime = exported
    with_export = bentoml.models.get(_store(bentoml_home, model, spec, folder, runtime))
    assert isinstance(load_predictor(with_export), LiteRTPredictor)  # SER_RUNTIME unset: litert.
    monkeypatch.setenv("SER_RUNTIME", "keras")
    assert type(load_predictor(with_export)) is Predictor
    monkeypatch.setenv("SER_RUNTIME", "onnx")
    with pytest.raises(ValueError, match="SER_RUNTIME='onnx'; allowed: litert, keras"):
        load_predictor(with_export)
    monkeypatch.delenv("SER_RUNTIME")

    # A model stored before the export existed: Keras, with a log line saying how to re-export.
    old = bentoml.models.get(_store(bentoml_home, model, spec, None, None))
    with caplog.at_level(logging.WARNING, logger="ser.runtime"):
        assert type(load_predictor(old)) is Predictor
    assert "has no LiteRT export" in caplog.text and "python -m ser.export" in caplog.text

    # Re-exported as a new version, it serves through LiteRT with the same answers.
    new = bentoml.models.get(reexport(str(old.tag)))
    assert new.tag.name == old.tag.name and new.tag != old.tag
    predictor = load_predictor(new)
    assert isinstance(predictor, LiteRTPredictor)
    expected = _probs(Predictor(model, spec).predict_many(_clips()))
    assert np.abs(_probs(predictor.predict_many(_clips())) - expected).max() <= TOLERANCE


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tensorflow", "keras", "librosa", "numba", "gradio", "tf_keras"}:
            raise ImportError(f"{name} is blocked: serving must not import it")
sys.meta_path.insert(0, Block())
"""


def test_serving_path_imports_no_tensorflow_or_librosa(exported, bentoml_home, tmp_path):
    """The service's model and feature steps, in a process where TF, Keras, librosa, Gradio fail to import."""
    model, spec, folder, runtime = exported
    tag = _store(bentoml_home, model, spec, folder, runtime)
    clips = _clips()
    np.savez(tmp_path / "clips.npz", *clips)
    script = (
        BLOCKER
        + f"""
import json, sys, numpy as np, bentoml
from ser.runtime import load_predictor
from ser.spec import ModelSpec, register_model_mel
ref = bentoml.models.get({tag!r})  # What a service's BentoModel attribute resolves to.
spec = ModelSpec.from_metadata(dict(ref.info.metadata))
assert register_model_mel(ref, spec)
predictor = load_predictor(ref)
clips = list(np.load({str(tmp_path / "clips.npz")!r}).values())
out = [list(p.probabilities.values()) for p in predictor.predict_many(clips)]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "librosa", "gradio"))
print(json.dumps({{"runtime": predictor.runtime, "probs": out, "heavy": heavy}}))
"""
    )
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "SER_DEMO": "0"}
    env.pop("SER_RUNTIME", None)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"] == "litert" and got["heavy"] == []
    expected = _probs(Predictor(model, spec).predict_many(clips))
    assert np.abs(np.array(got["probs"]) - expected).max() <= TOLERANCE


def test_service_module_imports_no_tensorflow_librosa_or_gradio(tmp_path):
    """`import service` (what every BentoML process does first) with SER_DEMO=0 stays light.

    scipy too: only the process computing features imports it, in `warm_up` (~1 s for scipy.signal).
    """
    script = BLOCKER + "import service, sys\nassert 'scipy' not in sys.modules\nprint('ok')\n"
    env = {**os.environ, "SER_DEMO": "0", "BENTOML_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


# --- the model training stores, and real speech ------------------------------------------------------
def _stored(trained_store: Path, monkeypatch):
    import bentoml
    from conftest import reset_bentoml_store

    monkeypatch.setenv("BENTOML_HOME", str(trained_store))
    reset_bentoml_store()
    return bentoml.models.get("ser_lstm:latest")


@pytest.mark.slow
def test_trained_model_is_stored_with_its_export(trained_store, monkeypatch):
    from conftest import reset_bentoml_store

    try:
        ref = _stored(trained_store, monkeypatch)
        spec = ModelSpec.from_metadata(dict(ref.info.metadata))
        assert spec.runtime["file"] == LITERT_FILE and spec.runtime["max_abs_diff"] <= TOLERANCE
        assert Path(ref.path_of(LITERT_FILE)).is_file() and Path(ref.path_of(MEL_FILE)).is_file()
        litert_p, keras_p = load_predictor(ref, "litert"), load_predictor(ref, "keras")
        assert isinstance(litert_p, LiteRTPredictor)
        diff = np.abs(_probs(litert_p.predict_many(_clips())) - _probs(keras_p.predict_many(_clips())))
        assert diff.max() <= TOLERANCE
    finally:
        monkeypatch.undo()
        reset_bentoml_store()


@pytest.mark.slow
@pytest.mark.tess
def test_litert_matches_keras_on_tess(tess_dir, trained_store, monkeypatch):
    """Real speech through both runtimes of the stored model: every 10th TESS clip (~280)."""
    from conftest import reset_bentoml_store

    from ser.audio import load_audio

    files = sorted(tess_dir.rglob("*.flac"))[::10]
    assert files, f"no audio under {tess_dir}"
    try:
        ref = _stored(trained_store, monkeypatch)
        litert_p, keras_p = load_predictor(ref, "litert"), load_predictor(ref, "keras")
        clips = [load_audio(f) for f in files]
        diff = np.abs(_probs(litert_p.predict_many(clips)) - _probs(keras_p.predict_many(clips)))
        print(f"\n{len(clips)} TESS clips: max |LiteRT - Keras| = {diff.max():.2e}")
        assert diff.max() <= TOLERANCE
    finally:
        monkeypatch.undo()
        reset_bentoml_store()


def test_training_only_regularisers_are_identity_at_inference_and_export(tmp_path):
    """Input noise and coefficient dropout change training only; the LiteRT export still matches."""
    import dataclasses

    import keras

    plain_preset = get_preset("bilstm")
    preset = dataclasses.replace(plain_preset, input_noise=0.3, channel_dropout=0.2)
    keras.utils.set_random_seed(2)
    model, plain = build_model(preset), build_model(plain_preset)
    weighted = [[layer for layer in m.layers if layer.weights] for m in (model, plain)]
    for mine, theirs in zip(*weighted, strict=True):  # Same order; auto-names differ per model.
        mine.set_weights(theirs.get_weights())
    x = probe_inputs(preset.features.input_shape, n=4)
    expected = np.asarray(plain(x, training=False))
    assert np.abs(np.asarray(model(x, training=False)) - expected).max() <= 1e-6
    assert np.abs(np.asarray(model(x, training=True)) - expected).max() > 1e-3
    norm = NormStats.fit(x, np.full(len(x), x.shape[1]))
    runtime = export_model_files(model, ModelSpec(EMOTIONS, preset.features, norm, preset.name), tmp_path)
    assert runtime["format"] == "litert" and runtime["batch"] == "dynamic"
    assert runtime["max_abs_diff"] <= TOLERANCE
