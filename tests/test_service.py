"""HTTP tests against a real `bentoml serve service:SER`, with a model trained into a temp store.

The module trains the fast `seed` preset for 3 epochs on a small synthetic corpus (the tests check
behaviour, not accuracy), serves it with small limits, and checks every endpoint, the error
contract, adaptive batching (through BentoML's own metrics), the Python client and `bentoml build`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf
from conftest import encode, tone
from helpers import response_status, send_whole_requests

from ser.labels import EMOTIONS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # The venv running pytest holds the `bentoml` CLI too.
TIMEOUT = 60  # Seconds for any one request.
LIMITS = {
    "SER_MAX_UPLOAD_BYTES": "2000000",
    "SER_MAX_DURATION_S": "10",
    "SER_MAX_TIMELINE_S": "60",
    "SER_MAX_BATCH_FILES": "4",
}
ERROR_CODES = {
    "invalid_audio",
    "empty_audio",
    "audio_too_large",
    "audio_too_long",
    "audio_too_short",
    "unsupported_audio",
    "non_finite_audio",
    "no_speech",
    "bad_request",
}


# --- fixtures --------------------------------------------------------------------------------------
@dataclass
class Store:
    home: Path
    tag: str  # The trained model's tag, e.g. "ser_lstm:abc123".
    corpus: Path


@dataclass
class Server:
    url: str
    tag: str
    log: Path
    corpus: Path


def _env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without SER_* settings, plus a private store and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
    env.update(BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="True", TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def _tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """A temp BentoML store holding a seed-preset model trained on a small synthetic corpus."""
    from ser.datasets import synthetic

    root = tmp_path_factory.mktemp("service")
    corpus = synthetic.generate(root / "corpus", clips_per_class=8)
    home = root / "bentoml"
    cmd = [sys.executable, "-m", "training.train", "--data", str(corpus), "--preset", "seed"]
    cmd += ["--epochs", "3", "--test-size", "28", "--workers", "1", "--report", str(root / "report")]
    done = subprocess.run(cmd, cwd=REPO, env=_env(home), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"training failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    saved = re.findall(r"^saved: (\S+)$", done.stdout, re.MULTILINE)
    assert saved, f"no 'saved: <tag>' line in the training output:\n{done.stdout[-3000:]}"
    return Store(home, saved[-1], corpus)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(store: Store) -> Server:
    """`bentoml serve service:SER` on a free port with small limits; stopped (process group) after."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = store.home.parent / "serve.log"
    cmd = [str(BIN / "bentoml"), "serve", "service:SER", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=_env(store.home, **LIMITS),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"bentoml serve exited with {proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"/readyz not 200 within 120 s:\n{_tail(log)}")
            try:
                # A short timeout: a probe that lands while the workers start can hang.
                if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        yield Server(url, store.tag, log, store.corpus)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


# --- helpers ---------------------------------------------------------------------------------------
WAV = encode(tone(1.5))


def post(server: Server, path: str, files, data=None) -> requests.Response:
    return requests.post(f"{server.url}{path}", files=files, data=data, timeout=TIMEOUT)


def predict(server: Server, content: bytes, name: str = "clip.wav", content_type: str | None = None):
    part = (name, content) if content_type is None else (name, content, content_type)
    return post(server, "/predict", {"audio": part})


def assert_clip_result(body: dict, tag: str) -> None:
    assert set(body) == {"emotion", "confidence", "probabilities", "duration_s", "model"}
    probs = body["probabilities"]
    assert list(probs) == list(EMOTIONS)
    assert abs(sum(probs.values()) - 1) <= 1e-4
    assert all(0 <= p <= 1 for p in probs.values())
    assert body["emotion"] == max(probs, key=probs.get)
    assert body["confidence"] == pytest.approx(probs[body["emotion"]])
    assert body["model"] == tag


def assert_no_leak(r: requests.Response) -> None:
    """Error bodies never show server paths or tracebacks."""
    for secret in ("/tmp", str(REPO), "site-packages", "Traceback"):
        assert secret not in r.text, f"{secret!r} in the response body: {r.text[:500]}"


def assert_error(r: requests.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert_no_leak(r)


def metric_values(text: str, name: str, **labels: str) -> list[float]:
    """Values of the samples of ``name`` whose labels include ``labels`` (Prometheus text format)."""
    out = []
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not m:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            out.append(float(m.group(2)))
    return out


def get_metrics(server: Server) -> str:
    r = requests.get(f"{server.url}/metrics", timeout=TIMEOUT)
    assert r.status_code == 200
    return r.text


def batch_stats(server: Server) -> tuple[float, float]:
    """(inputs, batches) the model service's `infer` dispatcher has run, over all workers."""
    text = get_metrics(server)
    total = metric_values(text, "bentoml_service_adaptive_batch_size_sum", method_name="infer")
    count = metric_values(text, "bentoml_service_adaptive_batch_size_count", method_name="infer")
    return sum(total), sum(count)


def long_recording(corpus: Path, seconds: float, gap_s: float = 0.8) -> tuple[bytes, float]:
    """Synthetic clips joined with ``gap_s`` silences until ``seconds`` long; (WAV bytes, duration)."""
    parts, sr, total = [], None, 0.0
    for path in sorted(corpus.rglob("*.wav")):
        y, rate = sf.read(path, dtype="float32")
        sr = sr or rate
        if rate != sr:
            continue
        parts += [y, np.zeros(int(gap_s * sr), np.float32)]
        total += len(y) / sr + gap_s
        if total >= seconds:
            break
    y = np.concatenate(parts)
    return encode(y, sr), len(y) / sr


# --- /predict ----------------------------------------------------------------------------------
def test_health(server: Server):
    assert requests.get(f"{server.url}/readyz", timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{server.url}/livez", timeout=TIMEOUT).status_code == 200


def test_model_method_is_not_served_over_http(server: Server):
    """`infer` is reached in-process only: no route, not in the OpenAPI document."""
    r = requests.post(f"{server.url}/infer", json={"x": [[[0.0]]]}, timeout=TIMEOUT)
    assert r.status_code == 404, r.text[:300]
    spec = requests.get(f"{server.url}/docs.json", timeout=TIMEOUT).json()
    assert {"/predict", "/predict_batch", "/timeline"} <= set(spec["paths"])
    assert "/infer" not in spec["paths"]
    assert not [k for k in spec["components"]["schemas"] if k.startswith("infer__")]


def test_predict_synthetic_clip(server: Server):
    clip = next(iter(sorted(server.corpus.rglob("*.wav"))))
    r = predict(server, clip.read_bytes(), clip.name)
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert_clip_result(body, server.tag)
    assert body["duration_s"] == pytest.approx(sf.info(clip).duration, abs=0.01)


@pytest.mark.parametrize(
    ("format", "subtype"),
    [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", None), ("OGG", "VORBIS"), ("MP3", None), ("AIFF", None)],
    ids=["wav16", "wav_float", "flac", "ogg", "mp3", "aiff"],
)
def test_predict_every_format(server: Server, format: str, subtype: str | None):
    r = predict(server, encode(tone(1.5), format=format, subtype=subtype), "clip.bin")
    assert r.status_code == 200, r.text[:500]
    assert_clip_result(r.json(), server.tag)
    assert r.json()["duration_s"] == pytest.approx(1.5, abs=0.06)  # MP3 pads a little.


def test_predict_trusts_bytes_not_names_or_types(server: Server):
    for name, content_type in [("clip.wav", "application/octet-stream"), ("clip.mp3", None)]:
        r = predict(server, WAV, name, content_type)
        assert r.status_code == 200, (name, content_type, r.text[:500])
        assert_clip_result(r.json(), server.tag)


def _nan_wav() -> bytes:
    y = tone(1.5)
    y[::100] = np.nan
    return encode(y, subtype="FLOAT")


BAD_INPUTS = {
    "not_audio": (b"this is a text file, not audio\n" * 20, 415, "invalid_audio"),
    "empty": (b"", 400, "empty_audio"),
    "too_short": (encode(tone(0.1)), 422, "audio_too_short"),
    "too_long": (encode(tone(12.0)), 413, "audio_too_long"),  # SER_MAX_DURATION_S=10
    "silent": (encode(np.zeros(24_000, np.float32)), 422, "no_speech"),
    "too_large": (encode(np.zeros(1_500_000, np.float32)), 413, "audio_too_large"),  # 3 MB > 2 MB
    "nan": (_nan_wav(), 422, "non_finite_audio"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_predict_bad_input(server: Server, case: str):
    content, status, code = BAD_INPUTS[case]
    assert_error(predict(server, content, "x.wav"), status, code)


def test_predict_truncated_header(server: Server):
    r = predict(server, WAV[:30])
    assert 400 <= r.status_code < 500, r.text[:500]
    assert r.json()["error"] in ERROR_CODES
    assert r.json()["message"]
    assert_no_leak(r)


@pytest.mark.parametrize("path", ["/predict", "/timeline"])
def test_missing_field(server: Server, path: str):
    """A file in a field the endpoint does not declare (`file`, not `audio`) → a 4xx, never a 500."""
    for content in (WAV, b"plain text"):
        r = post(server, path, {"file": ("clip.wav", content)})
        assert 400 <= r.status_code < 500, r.text[:500]
        assert_no_leak(r)
    r = post(server, path, None, data={"x": "1"})  # No file at all.
    assert 400 <= r.status_code < 500, r.text[:500]


def test_too_many_files(server: Server):
    files = [("audios", (f"clip{i}.wav", WAV)) for i in range(5)]  # SER_MAX_BATCH_FILES=4
    assert_error(post(server, "/predict_batch", files), 400, "bad_request")


def test_worker_survives_bad_inputs(server: Server):
    r = predict(server, WAV)
    assert r.status_code == 200, r.text[:500]
    assert_clip_result(r.json(), server.tag)


# --- /predict_batch ----------------------------------------------------------------------------
def test_predict_batch_keeps_order_and_isolates_errors(server: Server):
    flac = encode(tone(2.0, f0=220.0), format="FLAC")
    files = [("audios", ("a.wav", WAV)), ("audios", ("b.wav", b"junk" * 50)), ("audios", ("c.flac", flac))]
    r = post(server, "/predict_batch", files)
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["model"] == server.tag
    first, middle, last = body["results"]
    assert_clip_result(first, server.tag)
    assert_clip_result(last, server.tag)
    assert first["duration_s"] == pytest.approx(1.5) and last["duration_s"] == pytest.approx(2.0)
    assert middle["error"] == "invalid_audio" and middle["message"]
    assert "/tmp" not in r.text and "Traceback" not in r.text


# --- /timeline ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recording(server: Server) -> tuple[bytes, float]:
    return long_recording(server.corpus, 20.0)


def timeline(server: Server, content: bytes, **params: float) -> requests.Response:
    data = {k: str(v) for k, v in params.items()} or None
    return post(server, "/timeline", {"audio": ("long.wav", content)}, data)


def test_timeline(server: Server, recording: tuple[bytes, float]):
    content, duration = recording
    r = timeline(server, content)
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["model"] == server.tag
    assert body["duration_s"] == pytest.approx(duration, abs=0.01)
    assert 0 < body["speech_s"] < body["duration_s"]
    assert (body["window_s"], body["hop_s"]) == (2.0, 1.0)
    assert body["segments"]
    for seg in body["segments"]:
        assert 0 <= seg["start_s"] < seg["end_s"] <= body["duration_s"] + 1e-3
        assert seg["end_s"] - seg["start_s"] <= body["window_s"] + 1e-3
        assert list(seg["probabilities"]) == list(EMOTIONS)
        assert abs(sum(seg["probabilities"].values()) - 1) <= 1e-4
        assert seg["emotion"] == max(seg["probabilities"], key=seg["probabilities"].get)
    starts = [seg["start_s"] for seg in body["segments"]]
    assert starts == sorted(starts)
    assert set(body["summary"]) == set(EMOTIONS)
    assert abs(sum(body["summary"].values()) - 1) <= 1e-3


def test_timeline_finer_windows_give_more_segments(server: Server, recording: tuple[bytes, float]):
    content, _ = recording
    default = timeline(server, content)
    finer = timeline(server, content, window_s=1.5, hop_s=0.5)
    assert default.status_code == finer.status_code == 200, finer.text[:500]
    assert (finer.json()["window_s"], finer.json()["hop_s"]) == (1.5, 0.5)
    assert len(finer.json()["segments"]) > len(default.json()["segments"])


def test_timeline_bad_parameters(server: Server):
    r = timeline(server, WAV, window_s=0)
    assert 400 <= r.status_code < 500, r.text[:500]
    assert_no_leak(r)
    assert_error(timeline(server, WAV, window_s=1.0, hop_s=1.5), 400, "bad_request")


def test_timeline_too_long(server: Server):
    # 70 s at 8 kHz is 1.1 MB: under the 2 MB upload limit, over SER_MAX_TIMELINE_S=60.
    assert_error(timeline(server, encode(tone(70.0, sr=8000), sr=8000)), 413, "audio_too_long")


# --- the audio as the request body (ser/raw_upload.py) -------------------------------------------
def raw(
    server: Server, path: str, content: bytes, content_type: str | None = "audio/wav", **params
) -> requests.Response:
    headers = {} if content_type is None else {"Content-Type": content_type}
    return requests.post(f"{server.url}{path}", data=content, headers=headers, params=params, timeout=TIMEOUT)


def test_raw_body_answers_as_the_form_does(server: Server):
    clip = next(iter(sorted(server.corpus.rglob("*.wav"))))
    form = predict(server, clip.read_bytes(), clip.name)
    body = raw(server, "/predict", clip.read_bytes())
    assert body.status_code == form.status_code == 200, body.text[:500]
    assert body.headers["content-type"] == "application/json"
    assert body.json() == form.json()
    assert_clip_result(body.json(), server.tag)


@pytest.mark.parametrize(
    "content_type", ["audio/flac", "audio/mpeg", "application/octet-stream", "Audio/WAV; rate=16000", None]
)
def test_raw_body_trusts_bytes_not_the_declared_type(server: Server, content_type: str):
    r = raw(server, "/predict", WAV, content_type)  # WAV bytes whatever the type says.
    assert r.status_code == 200, r.text[:500]
    assert_clip_result(r.json(), server.tag)


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_raw_body_bad_input(server: Server, case: str):
    content, status, code = BAD_INPUTS[case]
    assert_error(raw(server, "/predict", content), status, code)


def test_raw_body_declared_as_a_url_encoded_form_is_answered_as_audio(server: Server):
    """`curl --data-binary @clip.wav URL` declares application/x-www-form-urlencoded."""
    expected = raw(server, "/predict", WAV).json()
    r = raw(server, "/predict", WAV, "application/x-www-form-urlencoded")
    assert r.status_code == 200, r.text[:500]
    assert r.json() == expected
    r = raw(server, "/timeline", WAV, "application/x-www-form-urlencoded")
    assert r.status_code == 200, r.text[:500]
    assert r.json()["segments"]


def test_raw_body_other_types_and_paths_go_to_the_api_routes(server: Server):
    r = raw(server, "/predict", WAV, "text/plain")  # Not audio: BentoML's route, which wants a form.
    assert 400 <= r.status_code < 500, r.text[:500]
    assert_no_leak(r)
    r = raw(server, "/predict_batch", WAV)  # Several files need a form.
    assert 400 <= r.status_code < 500, r.text[:500]
    assert_no_leak(r)
    assert requests.get(f"{server.url}/predict", timeout=TIMEOUT).status_code == 405


def test_raw_body_is_in_the_openapi_spec(server: Server):
    paths = requests.get(f"{server.url}/docs.json", timeout=TIMEOUT).json()["paths"]
    for route in ("/predict", "/timeline"):
        post = paths[route]["post"]
        assert {"multipart/form-data", "audio/*", "application/octet-stream"} <= set(
            post["requestBody"]["content"]
        )
        assert "as the body" in post["description"]
    assert "window_s" in paths["/timeline"]["post"]["description"]
    assert set(paths["/predict_batch"]["post"]["requestBody"]["content"]) == {"multipart/form-data"}


def test_raw_body_timeline(server: Server, recording: tuple[bytes, float]):
    content, duration = recording
    form = timeline(server, content, window_s=1.5, hop_s=0.5)
    r = raw(server, "/timeline", content, window_s=1.5, hop_s=0.5)
    assert r.status_code == form.status_code == 200, r.text[:500]
    assert r.json() == form.json()
    assert r.json()["duration_s"] == pytest.approx(duration, abs=0.01)
    assert (r.json()["window_s"], r.json()["hop_s"]) == (1.5, 0.5)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"window_s": "abc"}, "window_s='abc' is not a number"),
        ({"hop_s": "nan"}, "not a finite number"),
        ({"window": "2"}, "unknown query parameter 'window'"),
        ({"window_s": "1", "hop_s": "1.5"}, "hop_s"),
        ({"window_s": "0"}, "window_s=0"),
    ],
)
def test_raw_body_timeline_bad_parameters(server: Server, params: dict, needle: str):
    r = raw(server, "/timeline", WAV, **params)
    assert_error(r, 400, "bad_request")
    assert needle in r.json()["message"]


def test_raw_body_timeline_too_long(server: Server):
    assert_error(raw(server, "/timeline", encode(tone(70.0, sr=8000), sr=8000)), 413, "audio_too_long")


def test_raw_body_requests_are_batched_and_counted(server: Server):
    text = get_metrics(server)
    served0 = sum(metric_values(text, "bentoml_service_request_total", endpoint="/predict"))
    inputs0, batches0 = batch_stats(server)
    clip = encode(tone(1.5, f0=170.0))
    codes: Counter[int] = Counter()
    for _ in range(4):  # Bursts of 32 requests sent together, until the batcher has merged some.
        burst = send_whole_requests(
            f"{server.url}/predict", None, 32, data=clip, headers={"Content-Type": "audio/wav"}
        )
        codes.update(response_status(conn) for conn in burst)
        inputs, batches = batch_stats(server)
        if inputs - inputs0 > batches - batches0:
            break
    assert set(codes) == {200}, codes
    assert inputs - inputs0 == codes.total()  # Every raw request went through the model's batcher…
    assert inputs - inputs0 > batches - batches0  # …which merged some of them.
    served = sum(metric_values(get_metrics(server), "bentoml_service_request_total", endpoint="/predict"))
    assert served - served0 == codes.total()  # BentoML's request metrics count them too.


# --- batching, metrics, client -------------------------------------------------------------------
def test_concurrent_requests_are_batched(server: Server):
    """Requests that arrive together share model batches (no 503, 429 or 5xx), each answered alone."""
    inputs0, batches0 = batch_stats(server)
    codes: Counter[int] = Counter()
    for round_ in range(4):  # Bursts of 32 forms sent together; the dispatcher's first ~11 calls are single.
        clip = encode(tone(1.0 + 0.1 * round_, f0=150.0 + 10 * round_))
        burst = send_whole_requests(f"{server.url}/predict", {"audio": ("clip.wav", clip)}, 32)
        codes.update(response_status(conn) for conn in burst)
        inputs, batches = batch_stats(server)
        if inputs - inputs0 > batches - batches0 and codes.total() >= 64:
            break
    assert set(codes) == {200}, codes
    assert inputs - inputs0 == codes.total()
    assert inputs - inputs0 > batches - batches0, (inputs - inputs0, batches - batches0)


def test_metrics(server: Server):
    text = get_metrics(server)
    predictions = {
        labels: float(v)
        for labels, v in re.findall(r'^ser_predictions_total\{emotion="(\w+)"\} (\S+)$', text, re.MULTILINE)
    }
    assert predictions and set(predictions) <= set(EMOTIONS)
    assert sum(predictions.values()) > 0
    assert sum(metric_values(text, "ser_preprocessing_seconds_count")) > 0
    assert sum(metric_values(text, "ser_preprocessing_seconds_sum")) > 0
    assert metric_values(text, "ser_preprocessing_seconds_bucket", le="+Inf")
    assert metric_values(text, "bentoml_service_request_total", endpoint="/predict", http_response_code="200")


def test_python_client(server: Server, tmp_path: Path):
    import bentoml

    clip, junk = tmp_path / "clip.wav", tmp_path / "junk.wav"
    clip.write_bytes(WAV)
    junk.write_bytes(b"not audio" * 10)
    with bentoml.SyncHTTPClient(server.url, timeout=TIMEOUT) as client:
        assert_clip_result(client.predict(audio=clip), server.tag)
        with pytest.raises(bentoml.exceptions.BentoMLException) as err:
            client.predict(audio=junk)
    assert err.value.error_code == 415
    assert json.loads(err.value.message)["error"] == "invalid_audio"


# --- bentoml build -----------------------------------------------------------------------------
def test_bentoml_build_packs_the_model(store: Store, tmp_path: Path):
    env = _env(store.home)
    built = subprocess.run(
        [str(BIN / "bentoml"), "build", "--output", "tag"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, f"bentoml build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    tags = re.findall(r"__tag__:(\S+)", built.stdout)
    assert tags, built.stdout[-2000:]
    bento = tags[-1]
    assert bento.startswith("ser:")

    shown = subprocess.run(
        [str(BIN / "bentoml"), "get", bento, "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    info = json.loads(shown.stdout)
    assert {s["name"] for s in info["services"]} == {"ser"}
    packed = {m["tag"] for s in info["services"] for m in s["models"]} | {m["tag"] for m in info["models"]}
    assert store.tag in packed, info

    archive = tmp_path / "ser.bento"
    exported = subprocess.run(
        [str(BIN / "bentoml"), "export", bento, str(archive)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr[-2000:]
    with tarfile.open(archive) as tar:
        names = {n.removeprefix("./") for n in tar.getnames()}
    name, version = store.tag.split(":")
    assert f"models/{name}/{version}/model.keras" in names
    assert "src/service.py" in names and "src/ser/audio.py" in names
    assert not any(n.startswith(("src/tests", "src/training")) for n in names)
