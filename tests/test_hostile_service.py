"""Every case of tests/hostile.py, and malformed requests, against a real `bentoml serve`.

Rejected uploads get their expected 4xx with a JSON ``{"error", "message"}`` body that shows no
server path or traceback; accepted ones get 200; nothing gets a 5xx or hangs, and the worker is
still serving afterwards. Default limits (the corpus is built for them).
"""

from __future__ import annotations

import json
import socket
import time

import hostile
import pytest
import requests
from helpers import REPO, serve

from ser import errors

pytestmark = pytest.mark.slow

TIMEOUT = 30  # Seconds for the client; every answer must come well within it.
MAX_SECONDS = 10.0  # Per request on a busy 2-core machine (inference included).
LEAKS = ("/tmp", str(REPO), "site-packages", "Traceback", 'File "')


def _status_of(code: str) -> int:
    classes, seen = [errors.SERError], {}
    while classes:
        cls = classes.pop()
        seen[cls.code] = cls.http_status
        classes.extend(cls.__subclasses__())
    return seen[code]


@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory):
    with serve(trained_store, tmp_path_factory.mktemp("hostile_service")) as served:
        yield served


def assert_clean_error(r: requests.Response, status: int | None = None, code: str | None = None) -> dict:
    assert r.status_code < 500, f"{r.status_code}: {r.text[:500]}"
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:500]}"
    if status is not None:
        assert r.status_code == status, r.text[:500]
    for leak in LEAKS:
        assert leak not in r.text, f"{leak!r} in the body: {r.text[:500]}"
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    if code is not None:
        assert body["error"] == code and isinstance(body["message"], str) and body["message"], body
    return body


def post(server, files=None, path: str = "/predict", **kwargs) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    r = requests.post(f"{server.url}{path}", files=files, timeout=TIMEOUT, **kwargs)
    return r, time.perf_counter() - started


@pytest.mark.parametrize("as_body", [False, True], ids=["form", "body"])
@pytest.mark.parametrize("name", list(hostile.corpus()))
def test_corpus_case(server, name, as_body):
    """Each case as a multipart upload, and as the request body itself (ser/raw_upload.py)."""
    case = hostile.corpus()[name]
    if as_body:
        r, seconds = post(server, data=case.data, headers={"Content-Type": "audio/wav"})
    else:
        r, seconds = post(server, {"audio": (case.filename, case.data)})
    assert seconds < MAX_SECONDS, f"{seconds:.1f} s"
    if case.expected == hostile.ACCEPT:
        assert r.status_code == 200, r.text[:500]
        assert set(r.json()) >= {"emotion", "confidence", "probabilities", "duration_s", "model"}
    else:
        assert_clean_error(r, _status_of(case.expected), case.expected)


def test_missing_field(server):
    r, _ = post(server, data={"something": "else"})
    assert_clean_error(r)
    r, _ = post(server, {"file": ("clip.wav", hostile.encode(hostile.tone()))})  # Wrong field name.
    assert_clean_error(r)


def test_text_where_a_file_belongs(server):
    """BentoML 1.4.39 downloads a text value of a file field as a URL (ser.compat.harden_uploads)."""
    for text in ("this is not a file", "/etc/passwd", "http://example.com/clip.wav", "https://1.1.1.1/a.wav"):
        r, _ = post(server, data={"audio": text})
        body = assert_clean_error(r, 400)
        assert "URLs are not fetched" in json.dumps(body), body
        assert "root:" not in r.text


def test_several_files_where_one_belongs(server):
    wav = hostile.encode(hostile.tone())
    r, _ = post(server, [("audio", ("a.wav", wav)), ("audio", ("b.wav", wav))])
    body = assert_clean_error(r, 400)
    assert "takes one file; 2 were sent" in json.dumps(body), body


def test_json_body_instead_of_multipart(server):
    for body in ({"audio": "UklGRiQAAABXQVZF"}, {"audio": "/etc/passwd"}, {"audio": None}, [1, 2, 3], "x"):
        r, _ = post(server, data=json.dumps(body), headers={"Content-Type": "application/json"})
        assert_clean_error(r)
        assert "root:" not in r.text
    r, _ = post(server, data=b"{not json", headers={"Content-Type": "application/json"})
    assert_clean_error(r)


def test_other_bodies(server):
    for content_type, data in [
        ("text/plain", b"hello"),
        ("text/plain", hostile.encode(hostile.tone())),  # Audio, but not declared as audio.
        ("application/octet-stream", b"hello"),  # Declared as a body to decode, but not audio.
        ("multipart/form-data", b"--x\r\n"),  # No boundary parameter.
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="audio"\r\n\r\n'),
        ("application/x-www-form-urlencoded", b"audio=" + b"x" * 1_500_000),  # Over Starlette's 1 MB part.
    ]:
        r, _ = post(server, data=data, headers={"Content-Type": content_type})
        assert_clean_error(r)
    r, _ = post(
        server, data=hostile.encode(hostile.tone()), headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code == 200, r.text[:500]  # The audio as the body.
    r, _ = post(server)  # No body at all.
    assert_clean_error(r)
    r, _ = post(server, data={"audio": "x" * 1_500_000})  # A text part over Starlette's 1 MB.
    assert_clean_error(r, 400)
    r, _ = post(server, [("x", ("a.txt", b"1"))] * 1001)  # Over Starlette's 1000 parts.
    assert_clean_error(r, 400)


def _raw(server, request: bytes, send_body: bytes = b"", timeout: float = 10) -> bytes:
    """Send raw bytes, return what the server answers (until it closes or ``timeout``)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request + send_body)
        chunks, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and b'"message"' in b"".join(chunks):
                break
    return b"".join(chunks)


def test_huge_content_length_is_refused_before_the_body(server):
    started = time.perf_counter()
    answer = _raw(
        server,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 1000000000000\r\n\r\n",
        b"--b\r\n",
    )
    assert time.perf_counter() - started < 5
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(body)["error"] == "audio_too_large"


def test_timeline_steps_too_small_are_refused(server):
    """A hop of 1 µs was a 500, one of 1 ms cost 25 s of CPU for a 20 s clip: both ≥ 0.25 s now."""
    wav = hostile.encode(hostile.tone(20.0))
    for window_s, hop_s in [(2, 1e-6), (2, 0.001), (1e-6, 1e-6), (0.1, 0.1), (2, -1), (2, "nan"), (2, "inf")]:
        r, seconds = post(
            server, {"audio": ("a.wav", wav)}, "/timeline", data={"window_s": window_s, "hop_s": hop_s}
        )
        assert_clean_error(r, 400)
        assert seconds < 2.0
    r, _ = post(server, {"audio": ("a.wav", wav)}, "/timeline", data={"window_s": 0.25, "hop_s": 0.25})
    assert r.status_code == 200, r.text[:300]


def test_cors_is_closed_by_default(server):
    origin = {"Origin": "https://elsewhere.example"}
    r = requests.get(f"{server.url}/livez", headers=origin, timeout=TIMEOUT)
    assert "access-control-allow-origin" not in r.headers
    r = requests.options(
        f"{server.url}/predict",
        headers={**origin, "Access-Control-Request-Method": "POST"},
        timeout=TIMEOUT,
    )
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code < 500


def test_zz_worker_still_serves_after_all_that(server):
    r, _ = post(server, {"audio": ("clip.wav", hostile.encode(hostile.tone(2.0)))})
    assert r.status_code == 200, r.text[:500]
    assert requests.get(f"{server.url}/livez", timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{server.url}/readyz", timeout=TIMEOUT).status_code == 200
    assert server.proc.poll() is None
    log = server.log_tail(200_000)
    assert "Segmentation fault" not in log and "core dumped" not in log
