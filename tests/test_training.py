"""End to end: train on the small synthetic corpus, store, reload, predict, evaluate; determinism.

One model is trained per module (2 epochs of the default preset) into a private BentoML store and
a private feature cache; the tests read it. The whole file takes about a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import reset_bentoml_store

from ser.audio import load_audio
from ser.datasets import load_manifest
from ser.labels import EMOTIONS
from ser.model import DEFAULT_PRESET, get_preset
from ser.predictor import Predictor
from ser.spec import ModelSpec

pytestmark = pytest.mark.slow

TEST_SIZE = 28
N_CLIPS = 4 * 7 * 12  # The synthetic_dir fixture: 4 speakers × 7 emotions × 12 clips.


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A private model store and feature cache for the whole module."""
    import training.data

    home = tmp_path_factory.mktemp("bentoml")
    cache = tmp_path_factory.mktemp("features")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENTOML_HOME", str(home))
        mp.setenv("SER_CACHE_DIR", str(cache))
        # `extract`'s cache_dir default was fixed when training.data was imported (from
        # SER_CACHE_DIR or the home folder), so the variable alone would not reach it.
        mp.setitem(training.data.extract.__kwdefaults__, "cache_dir", cache)
        reset_bentoml_store()
        yield home
        reset_bentoml_store()


def _train(synthetic_dir: Path, report: Path, *extra: str) -> str:
    from training import train

    args = ["--data", str(synthetic_dir), "--test-size", str(TEST_SIZE), "--report", str(report)]
    return train.main([*args, "--workers", "1", *extra])


@pytest.fixture(scope="module")
def trained(store, synthetic_dir, tmp_path_factory) -> tuple[str, Path]:
    report = tmp_path_factory.mktemp("train") / "report"
    return _train(synthetic_dir, report, "--epochs", "2"), report


def _metadata(tag: str) -> dict:
    import bentoml

    return dict(bentoml.models.get(tag).info.metadata)


def test_training_stores_the_model_with_its_spec(trained, synthetic_dir):
    import bentoml

    tag, report = trained
    assert tag.startswith("ser_lstm:")
    ref = bentoml.models.get(tag)
    assert ref.info.labels == {"preset": DEFAULT_PRESET}
    meta = dict(ref.info.metadata)
    features = get_preset(DEFAULT_PRESET).features
    assert meta["labels"] == list(EMOTIONS)
    assert meta["features"] == features.to_dict()
    assert len(meta["norm"]["mean"]) == len(meta["norm"]["std"]) == features.n_features
    assert all(s > 0 for s in meta["norm"]["std"])
    assert meta["preset"] == DEFAULT_PRESET
    assert meta["split"] == {"mode": "random", "test_size": TEST_SIZE, "seed": 0}
    assert meta["manifest_sha"] == load_manifest(synthetic_dir).digest()
    assert meta["dataset"] == "synthetic" and meta["n_clips"] == N_CLIPS
    assert meta["epochs_run"] == 2
    assert 0.0 <= meta["test_accuracy"] <= 1.0 and 0.0 <= meta["test_macro_f1"] <= 1.0
    spec = ModelSpec.from_metadata(meta)
    assert spec.features == features and spec.labels == EMOTIONS
    assert spec.info["manifest_sha"] == meta["manifest_sha"]

    assert {p.name for p in report.iterdir()} >= {"metrics.json", "curves.png", "confusion.png"}
    for png in ("curves.png", "confusion.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((report / "metrics.json").read_text())
    assert written["manifest_sha"] == meta["manifest_sha"]
    assert written["test"]["n"] == TEST_SIZE
    assert written["test"]["accuracy"] == meta["test_accuracy"]
    assert written["test"]["labels"] == list(EMOTIONS)


def test_stored_model_predicts_and_reproduces_its_test_accuracy(trained, synthetic_dir):
    from training.data import extract
    from training.split import make_split
    from training.train import _subset, evaluate_clips

    tag, _ = trained
    predictor = Predictor.load(tag)
    assert predictor.tag == tag
    manifest = load_manifest(synthetic_dir)
    pred = predictor.predict_audio(load_audio(manifest.entries[0].path))
    assert list(pred.probabilities) == list(EMOTIONS)
    assert sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert pred.emotion in EMOTIONS and pred.confidence == max(pred.probabilities.values())
    assert pred.duration_s == pytest.approx(manifest.entries[0].duration)

    # The stored model, reloaded, scores exactly what training recorded on the same test clips.
    split = make_split(manifest.entries, mode="random", test_size=TEST_SIZE, seed=0)
    features = extract(manifest.entries, predictor.spec.features, workers=1, progress=False)
    metrics = evaluate_clips(predictor, _subset(features, split.test))
    assert metrics["n"] == TEST_SIZE
    assert metrics["accuracy"] == pytest.approx(_metadata(tag)["test_accuracy"])
    assert metrics["macro_f1"] == pytest.approx(_metadata(tag)["test_macro_f1"])


def test_evaluate_cli_on_every_clip(trained, synthetic_dir, tmp_path):
    from training import evaluate

    tag, _ = trained
    out = tmp_path / "eval.json"
    metrics = evaluate.main(["--model", tag, "--data", str(synthetic_dir), "--json", str(out)])
    written = json.loads(out.read_text())
    assert set(written) >= {"accuracy", "macro_f1", "labels", "per_class", "confusion_matrix", "n"}
    assert written["n"] == N_CLIPS == sum(map(sum, written["confusion_matrix"]))
    assert written["labels"] == list(EMOTIONS)
    assert written["model"] == tag
    assert written["accuracy"] == metrics["accuracy"]


def test_speaker_protocol_with_copies_and_pseudo_labels(synthetic_dir, tmp_path):
    """--protocol speaker: one model per speaker, tested on the others; --tta and --pseudo-labels
    report the same models' accuracy without them beside each run."""
    from training import evaluate

    out = tmp_path / "speaker.json"
    argv = ["--protocol", "speaker", "--data", str(synthetic_dir), "--preset", "seed", "--epochs", "2"]
    argv += ["--tta", "speed_1.1", "--pseudo-labels", "0.5", "--pseudo-rounds", "2", "--json", str(out)]
    metrics = evaluate.main(argv)
    written = json.loads(out.read_text())
    assert set(written) >= {"accuracy", "macro_f1", "labels", "per_class", "confusion_matrix", "n"}
    assert set(written) >= {"mean_accuracy", "runs", "tta", "pseudo_labels"}
    speakers = sorted({r["train"] for r in written["runs"]})
    assert len(written["runs"]) == len(speakers) == 4
    for run in written["runs"]:
        assert run["test"] == "+".join(s for s in speakers if s != run["train"])
        assert 0 <= run["accuracy"] <= 1 and 0 <= run["accuracy_without_tta"] <= 1
        assert 0 <= run["accuracy_before_pseudo_labels"] <= 1
        first, second = run["pseudo_label_rounds"]
        # Half, then all, of each class's share of the other three speakers' 3 × 84 clips (36 a class).
        assert (first["fraction"], second["fraction"]) == (0.5, 1.0)
        assert first["clips"] <= 7 * 18 and first["clips"] <= second["clips"] <= 7 * 36
        assert all(0 <= r["label_accuracy"] <= 1 and 0 <= r["accuracy"] <= 1 for r in (first, second))
        assert run["accuracy_without_tta"] == pytest.approx(second["accuracy"])  # The same last model.
        cm = np.array(run["confusion_matrix"])  # This direction's own: rows true, columns predicted.
        assert cm.shape == (7, 7)
        assert list(cm.diagonal() / cm.sum(axis=1)) == pytest.approx(list(run["recall"].values()))
    assert sum(np.sum(r["confusion_matrix"]) for r in written["runs"]) == written["n"]
    assert written["n"] == 3 * N_CLIPS  # Every clip is tested once per speaker it was not trained on.
    assert metrics["mean_accuracy"] == pytest.approx(np.mean([r["accuracy"] for r in written["runs"]]))


def test_speaker_protocol_ensemble(synthetic_dir, tmp_path):
    """--ensemble N: N models per direction on the same split, each member's accuracy beside the run."""
    from training import evaluate

    argv = ["--protocol", "speaker", "--data", str(synthetic_dir), "--preset", "seed", "--epochs", "1"]
    metrics = evaluate.main([*argv, "--ensemble", "2", "--bias-ceiling"])
    assert metrics["ensemble"] == 2
    for run in metrics["runs"]:
        assert len(run["member_accuracies"]) == 2
        assert run["accuracy_without_tta"] == pytest.approx(run["member_accuracies"][0])
        # Offsets of 0 are among those tried: the ceiling is never below the run's own accuracy.
        assert run["accuracy"] <= run["bias_ceiling"]["accuracy"] <= 1
        assert set(run["bias_ceiling"]["offsets"]) == set(run["bias_ceiling"]["recall"]) == set(EMOTIONS)
    ceilings = [r["bias_ceiling"]["accuracy"] for r in metrics["runs"]]
    assert metrics["mean_bias_ceiling"] == pytest.approx(np.mean(ceilings))
    with pytest.raises(SystemExit):
        evaluate.main([*argv, "--ensemble", "2", "--pseudo-labels", "0.5"])
    with pytest.raises(SystemExit):
        evaluate.main([*argv, "--ensemble", "0"])


def test_speaker_protocol_with_other_voices_in_training(synthetic_dir, tmp_path, monkeypatch):
    """--extra-train: another corpus's speakers join every training run and are never tested on."""
    from ser.datasets import synthetic
    from training import evaluate

    others = synthetic.generate(tmp_path / "others", clips_per_class=2, speakers=("SYX", "SYY"))
    trained_on = []

    def fit(preset, clips, split, **kw):
        trained_on.append(len(split.train) + len(split.val))
        return real_fit(preset, clips, split, **kw)

    real_fit = evaluate.fit
    monkeypatch.setattr(evaluate, "fit", fit)
    argv = ["--protocol", "speaker", "--data", str(synthetic_dir), "--preset", "seed", "--epochs", "1"]
    metrics = evaluate.main([*argv, "--extra-train", str(others), "--extra-train-dataset", "synthetic"])
    assert sorted(r["train"] for r in metrics["runs"]) == ["SYA", "SYB", "SYC", "SYD"]
    assert all("SYX" not in r["test"] and "SYY" not in r["test"] for r in metrics["runs"])
    assert metrics["n"] == 3 * N_CLIPS and metrics["extra_train"] == str(others)
    assert trained_on == [N_CLIPS // 4 + 2 * 7 * 2] * 4  # One speaker's clips and every other voice's.
    with pytest.raises(SystemExit, match="shares speakers"):
        evaluate.main([*argv, "--extra-train", str(synthetic_dir)])


def test_ensure_model_does_not_train_when_the_store_has_one(trained, monkeypatch, capsys):
    import bentoml

    from training import ensure_model, train

    def refuse(argv=None):
        raise AssertionError("ensure_model trained although the store has a model")

    monkeypatch.setattr(train, "main", refuse)
    before = {str(m.tag) for m in bentoml.models.list()}
    assert ensure_model.main(["--name", "ser_lstm:latest"]) == "ser_lstm:latest"
    assert "not training" in capsys.readouterr().out
    assert {str(m.tag) for m in bentoml.models.list()} == before
    assert ensure_model.has_model(trained[0])
    assert not ensure_model.has_model("ser_nothing_here:latest")


def test_training_is_deterministic(store, synthetic_dir, tmp_path):
    tags = [
        _train(
            synthetic_dir, tmp_path / f"report{i}", "--preset", "seed", "--epochs", "1", "--name", "ser_det"
        )
        for i in range(2)
    ]
    assert tags[0] != tags[1]
    first, second = (_metadata(t) for t in tags)
    for key in ("test_accuracy", "test_macro_f1", "norm", "features", "split", "manifest_sha"):
        assert first[key] == second[key], key
    seed = get_preset("seed").features
    assert first["features"] == seed.to_dict()
    assert len(first["norm"]["mean"]) == seed.input_shape[0] == 40 and first["norm"]["per_step"]
    reports = [json.loads((tmp_path / f"report{i}" / "metrics.json").read_text())["test"] for i in range(2)]
    assert reports[0] == reports[1]
    clips = [load_audio(e.path) for e in load_manifest(synthetic_dir).entries[::48]]
    probs = [
        np.array([list(p.probabilities.values()) for p in Predictor.load(t).predict_many(clips)])
        for t in tags
    ]
    np.testing.assert_array_equal(probs[0], probs[1])


def test_bias_ceiling_finds_offsets_when_the_scores_hold_the_answer():
    """training.metrics.bias_ceiling: a class the model always under-scores is recovered by an
    offset; probabilities that carry no information gain only what fitting to the labels allows."""
    from training.metrics import BIAS_GRID, bias_ceiling

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    informative = np.eye(3)[y] * 0.3 + 0.1
    informative[:, 1] *= 0.2  # Class 1 is right in rank among its own clips, but never first.
    informative /= informative.sum(axis=1, keepdims=True)
    assert np.mean(informative.argmax(axis=1) == y) < 0.7
    found = bias_ceiling(y, informative, ["a", "b", "c"])
    assert found["accuracy"] == 1.0 and found["recall"] == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert found["offsets"]["b"] > 0 and all(v in BIAS_GRID for v in found["offsets"].values())

    noise = rng.dirichlet([1, 1, 1], 300)
    before = np.mean(noise.argmax(axis=1) == y)
    assert before <= bias_ceiling(y, noise, ["a", "b", "c"])["accuracy"] <= before + 0.1
    # Already right: nothing moves.
    assert set(bias_ceiling(y, np.eye(3)[y], ["a", "b", "c"])["offsets"].values()) == {0.0}


def test_ensemble_is_trained_stored_and_served_as_one_model(store, synthetic_dir, trained, tmp_path):
    """--ensemble 2: two seeds' models saved as one whose probabilities are their mean."""
    from ser import runtime
    from training.data import extract
    from training.split import make_split
    from training.train import _subset, clip_probabilities

    tag = _train(synthetic_dir, tmp_path / "report", "--epochs", "2", "--ensemble", "2", "--name", "ser_ens")
    meta = _metadata(tag)
    assert meta["ensemble"] == 2 and meta["runtime"]["format"] == "litert"
    test = json.loads((tmp_path / "report" / "metrics.json").read_text())["test"]
    members = test["member_accuracies"]
    assert test["member_epochs_run"] == [2, 2]
    # The first member is the single model of the same seed and epochs (the `trained` fixture's).
    assert members[0] == _metadata(trained[0])["test_accuracy"] and len(members) == 2

    ensemble, single = Predictor.load(tag), Predictor.load(trained[0])
    assert [layer.name for layer in ensemble.model.layers[1:3]] == ["member_0", "member_1"]
    manifest = load_manifest(synthetic_dir)
    split = make_split(manifest.entries, mode="random", test_size=TEST_SIZE, seed=0)
    every = extract(manifest.entries, ensemble.spec.features, workers=1, progress=False)
    features = _subset(every, split.test)
    # Member 0 inside the ensemble is the single model: same weights, same probabilities.
    x = ensemble.spec.norm.apply(features.x, features.lengths)
    np.testing.assert_allclose(ensemble.model.get_layer("member_0")(x), single.model(x), atol=1e-6)
    # Served (LiteRT, no TensorFlow) as evaluated: the stored test accuracy comes back.
    served = runtime.load(tag, "litert")
    assert served.runtime == "litert"
    by_clip = clip_probabilities(served, features)
    accuracy = np.mean([t == int(np.argmax(p)) for t, p in by_clip.values()])
    assert accuracy == pytest.approx(meta["test_accuracy"])
    with pytest.raises(SystemExit):
        _train(synthetic_dir, tmp_path / "bad", "--ensemble", "0")


def test_mixup_preset_trains_deterministically(store, synthetic_dir, tmp_path, monkeypatch):
    import dataclasses

    from ser import model
    from training import batch_augment

    mixed = []  # Every batch the model was fitted on, as mixup returned it.

    def mix(x, y, alpha, rng):
        mixed.append((alpha, *real_mix(x, y, alpha, rng)))
        return mixed[-1][1:]

    real_mix = batch_augment.mix
    monkeypatch.setattr(batch_augment, "mix", mix)
    preset = dataclasses.replace(model.PRESETS["seed"], name="seed_mixup", mixup=0.4)
    monkeypatch.setitem(model.PRESETS, "seed_mixup", preset)
    argv = ["--preset", "seed_mixup", "--epochs", "2", "--name", "ser_mixup"]
    tags = [_train(synthetic_dir, tmp_path / f"report{i}", *argv) for i in range(2)]
    # Training went through mixup with the preset's α, and its targets were mixtures, not one-hot.
    assert mixed and {alpha for alpha, _, _ in mixed} == {0.4}
    assert any(np.any((y > 0) & (y < 1)) for _, _, y in mixed)
    first, second = (_metadata(t) for t in tags)
    assert first["preset"] == "seed_mixup" and first["epochs_run"] == 2
    assert first["test_accuracy"] == second["test_accuracy"]
    reports = [json.loads((tmp_path / f"report{i}" / "metrics.json").read_text()) for i in range(2)]
    assert reports[0]["test"] == reports[1]["test"]
