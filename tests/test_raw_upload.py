"""ser/raw_upload.py in-process: which requests it answers, what it passes on, its query parameters.

The served behaviour (same JSON as a form, errors, batching, metrics) is in test_service.py; the API
key and upload limit around it in test_security.py.
"""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ser.errors import BadRequestError
from ser.raw_upload import RawAudioMiddleware, float_params


def _client() -> tuple[TestClient, list]:
    calls = []

    async def handler(body: bytes, params: dict) -> tuple[int, dict]:
        calls.append((body, params))
        return 200, {"bytes": len(body), **params}

    async def route(request):
        return PlainTextResponse("route")

    app = Starlette(
        routes=[Route("/predict", route, methods=["POST", "GET"]), Route("/other", route, methods=["POST"])]
    )
    app.add_middleware(RawAudioMiddleware, handlers={"/predict": (handler, frozenset({"hop_s"}))})
    return TestClient(app), calls


@pytest.mark.parametrize(
    "content_type", ["audio/wav", "audio/x-flac", "application/octet-stream", "AUDIO/Ogg; x=1", None]
)
def test_audio_bodies_are_answered_here(content_type: str | None):
    """... and so is a body with no Content-Type at all (RFC 9110: octet-stream may be assumed)."""
    client, calls = _client()
    headers = {} if content_type is None else {"Content-Type": content_type}
    r = client.post("/predict?hop_s=0.5", content=b"RIFF" * 10, headers=headers)
    assert r.status_code == 200 and r.json() == {"bytes": 40, "hop_s": 0.5}
    assert calls == [(b"RIFF" * 10, {"hop_s": 0.5})]


def test_everything_else_goes_on_to_the_routes():
    client, calls = _client()
    assert client.post("/predict", content=b"x", headers={"Content-Type": "text/plain"}).text == "route"
    assert client.post("/predict", files={"audio": ("a.wav", b"x")}).text == "route"  # A form.
    assert client.post("/other", content=b"x", headers={"Content-Type": "audio/wav"}).text == "route"
    assert client.get("/predict", headers={"Content-Type": "audio/wav"}).text == "route"
    assert calls == []


URLENCODED = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("content_type", [URLENCODED, "Application/X-WWW-Form-URLEncoded; a=b"])
def test_audio_declared_as_a_url_encoded_form_is_answered_here(content_type: str):
    """What `curl --data-binary @clip.wav URL` declares when not told otherwise: binary bytes in
    the first 64 are no form (URL-encoding escapes them), so the body is audio."""
    client, calls = _client()
    wav_header = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\x00" * 60
    r = client.post("/predict", content=wav_header, headers={"Content-Type": content_type})
    assert r.status_code == 200 and r.json() == {"bytes": len(wav_header)}
    assert calls == [(wav_header, {})]


def test_a_url_encoded_form_goes_on_to_the_route_with_its_body_intact():
    seen = []

    async def route(request):
        seen.append(await request.body())
        return PlainTextResponse("route")

    async def handler(body: bytes, params: dict) -> tuple[int, dict]:
        raise AssertionError("a form is not audio")

    app = Starlette(routes=[Route("/predict", route, methods=["POST"])])
    app.add_middleware(RawAudioMiddleware, handlers={"/predict": (handler, frozenset())})
    client = TestClient(app)
    form = b"audio=" + b"x%20y" * 5000  # Longer than what is looked at, sent in several chunks.
    for content in (form, b"audio=a", b"", (form[i : i + 1000] for i in range(0, len(form), 1000))):
        r = client.post("/predict", content=content, headers={"Content-Type": URLENCODED})
        assert r.text == "route"
    assert seen == [form, b"audio=a", b"", form]


def test_binary_url_encoded_body_in_chunks_is_read_whole():
    client, _ = _client()
    parts = (bytes([0, 255]) * 5000 for _ in range(7))  # Chunked: the first chunk decides.
    r = client.post("/predict", content=parts, headers={"Content-Type": URLENCODED})
    assert r.status_code == 200 and r.json()["bytes"] == 70_000


def test_a_chunked_body_is_read_whole():
    client, _ = _client()
    parts = (b"ab" * 5000 for _ in range(7))  # A generator: sent chunked, without a length.
    r = client.post("/predict", content=parts, headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200 and r.json()["bytes"] == 70_000


def test_bad_query_parameters_are_a_400_naming_them():
    client, calls = _client()
    r = client.post("/predict?hop_s=fast", content=b"x", headers={"Content-Type": "audio/wav"})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "message": "hop_s='fast' is not a number"}
    assert calls == []


def test_float_params():
    allowed = frozenset({"window_s", "hop_s"})
    assert float_params(b"", allowed) == {}
    assert float_params(b"window_s=2&hop_s=0.25", allowed) == {"window_s": 2.0, "hop_s": 0.25}
    assert float_params(b"hop_s=1&hop_s=0.5", allowed) == {"hop_s": 0.5}  # The last one wins.
    with pytest.raises(BadRequestError, match="unknown query parameter 'step'; allowed: hop_s, window_s"):
        float_params(b"step=1", allowed)
    with pytest.raises(BadRequestError, match="allowed: none"):
        float_params(b"hop_s=1", frozenset())
    with pytest.raises(BadRequestError, match="window_s='' is not a number"):
        float_params(b"window_s=", allowed)
    for bad in (b"inf", b"-inf", b"nan"):
        with pytest.raises(BadRequestError, match="not a finite number"):
            float_params(b"hop_s=" + bad, allowed)
