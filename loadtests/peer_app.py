"""A seed-style peer for the benchmark: what the write-ups' Flask app does for each request.

    gunicorn -w 2 -b 127.0.0.1:5000 --timeout 120 loadtests.peer_app:app
    curl -F audio=@clip.wav http://127.0.0.1:5000/predict

Per request: save the upload to a temporary file, ``librosa.load(path, duration=3, offset=0.5)``,
the mean of 40 MFCCs over time (``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)``), then
``model.predict`` on that one clip. The network is the write-ups' (``ser.model.build_model`` of the
``seed`` preset), untrained unless ``SER_PEER_MODEL`` names a ``.keras`` file: the benchmark
measures speed, not accuracy. Each gunicorn worker builds its own model when it imports this.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import librosa
import numpy as np
from flask import Flask, jsonify, request

from ser.labels import EMOTIONS
from ser.model import build_model, get_preset


def _load_model():
    path = os.environ.get("SER_PEER_MODEL")
    if path:
        import keras

        return keras.models.load_model(path)
    return build_model(get_preset("seed"))


model = _load_model()
app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.post("/predict")
def predict():
    upload = request.files.get("audio")
    if upload is None:
        return jsonify(error="bad_request", message="send the audio in the form field 'audio'"), 400
    suffix = Path(upload.filename or "clip.wav").suffix or ".wav"
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        upload.save(f)
        f.flush()
        y, sr = librosa.load(f.name, duration=3, offset=0.5)
    mfcc = np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).T, axis=0)
    probs = model.predict(mfcc[np.newaxis, :, np.newaxis], verbose=0)[0]
    best = int(np.argmax(probs))
    return jsonify(emotion=EMOTIONS[best], confidence=float(probs[best]))
