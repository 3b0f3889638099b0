"""The audio itself as the request body: /predict and /timeline without a multipart form.

    curl --data-binary @clip.wav -H 'Content-Type: audio/wav' http://localhost:3000/predict
    curl --data-binary @long.wav -H 'Content-Type: audio/wav' 'http://localhost:3000/timeline?hop_s=0.5'

A POST to a raw path whose Content-Type is `audio/*` or `application/octet-stream`, or that has
none (RFC 9110 lets a recipient assume `application/octet-stream`; `requests.post(url, data=f)`
sends none), is answered here, from the body in memory. So is a body declared
`application/x-www-form-urlencoded` — what `curl --data-binary @clip.wav` declares unless told
otherwise — whose first bytes are not printable ASCII: URL-encoding escapes every other byte, so
such a body is no form, and BentoML's route would parse the audio as form fields and answer "Too
many fields". A real URL-encoded form (`audio=...`) and any other request (multipart forms,
JSON) go on to BentoML's route as before. Why: BentoML
parses a multipart upload into a temporary file, validates it with pydantic and serialises the
answer through its IO descriptors, per request — on 2 cores that work, not the model, bounded
throughput (bench/report.md: "Where our CPU goes"). The answer is the same JSON from the same
`analyse` step, and the request still passes every middleware outside this one: metrics,
tracing, access log, timeout, concurrency limit, API key and upload limit
(`ser.security.install_middlewares` adds this one last, innermost).

The declared Content-Type only chooses this path; the decoder reads the content (a FLAC sent as
`audio/wav` is decoded as FLAC), as for a multipart upload.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qs

from ser.errors import BadRequestError, SERError
from ser.security import _header, send_json

RAW_TYPES = (b"audio/", b"application/octet-stream")
URLENCODED = b"application/x-www-form-urlencoded"
SNIFF_BYTES = 64  # Of a URL-encoded body, looked at before choosing the path: a WAV header's first
# 64 bytes hold binary sizes; a form's are printable ASCII.
FORM_BYTES = frozenset(range(0x20, 0x7F))


def looks_like_a_form(head: bytes) -> bool:
    """Whether the start of a URL-encoded body can be a form: printable ASCII only."""
    return FORM_BYTES.issuperset(head[:SNIFF_BYTES])


# (body, query parameters) → (HTTP status, JSON body).
Handler = Callable[[bytes, Mapping[str, float]], Awaitable[tuple[int, dict]]]


def _media_type(scope: dict) -> bytes | None:
    header = _header(scope, b"content-type")
    return None if header is None else header.partition(b";")[0].strip().lower()


def is_raw(ctype: bytes | None) -> bool:
    """Whether a media type (None: no Content-Type) is answered here without looking at the body."""
    return ctype is None or ctype.startswith(RAW_TYPES)


def float_params(query_string: bytes, allowed: frozenset[str]) -> dict[str, float]:
    """Query parameters as finite floats; anything else is a 400 that names it."""
    params: dict[str, float] = {}
    for name, values in parse_qs(query_string.decode("latin-1"), keep_blank_values=True).items():
        if name not in allowed:
            allowed_text = ", ".join(sorted(allowed)) or "none"
            raise BadRequestError(f"unknown query parameter {name!r}; allowed: {allowed_text}")
        try:
            value = float(values[-1])
        except ValueError:
            raise BadRequestError(f"{name}={values[-1]!r} is not a number") from None
        if not math.isfinite(value):
            raise BadRequestError(f"{name}={values[-1]!r} is not a finite number")
        params[name] = value
    return params


def document(notes: Mapping[str, str]) -> None:
    """Show the raw body in /docs.json and the Swagger UI: each route in ``notes`` also takes
    `audio/*` and `application/octet-stream` bodies, and its description gains the note.

    BentoML 1.4.39's OpenAPI model has no query parameters, so the note names them.
    """
    from _bentoml_sdk.service import openapi

    previous = openapi.generate_spec
    if getattr(previous, "_ser_raw_documented", False):
        return

    def generate_spec(svc, **kwargs):
        spec = previous(svc, **kwargs)
        for route, note in notes.items():
            item = spec.paths.get(route)
            post = getattr(item, "post", None)  # BentoML builds each operation as a plain dict.
            if not isinstance(post, dict) or "content" not in post.get("requestBody", {}):
                continue
            binary = {"schema": {"type": "string", "format": "binary"}}
            post["requestBody"]["content"].update({"audio/*": binary, "application/octet-stream": binary})
            post["description"] = f"{post.get('description') or ''}\n\n{note}".strip()
        return spec

    generate_spec._ser_raw_documented = True
    openapi.generate_spec = generate_spec


class RawAudioMiddleware:
    """Answer ``POST <path>`` with a raw audio body through ``handlers[path]``."""

    def __init__(self, app, handlers: Mapping[str, tuple[Handler, frozenset[str]]]):
        self.app = app
        self.handlers = dict(handlers)

    async def __call__(self, scope, receive, send) -> None:
        route = self.handlers.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        ctype = _media_type(scope)
        if ctype != URLENCODED and not is_raw(ctype):
            return await self.app(scope, receive, send)
        sniff = ctype == URLENCODED
        messages: list[dict] = []
        if not await _read(receive, messages, SNIFF_BYTES if sniff else math.inf):
            return  # The client left: nobody to answer.
        if sniff and looks_like_a_form(b"".join(m.get("body", b"") for m in messages)):
            return await self.app(scope, _replay(messages, receive), send)  # Passed on unread.
        if not await _read(receive, messages):
            return
        handler, allowed = route
        try:
            params = float_params(scope.get("query_string", b""), allowed)
        except SERError as e:
            return await send_json(send, e.http_status, e.to_dict())
        status, body = await handler(b"".join(m.get("body", b"") for m in messages), params)
        await send_json(send, status, body)


def _replay(messages: list[dict], receive):
    """A `receive` that gives back ``messages`` first, then reads on."""
    pending = list(messages)

    async def replay() -> dict:
        return pending.pop(0) if pending else await receive()

    return replay


async def _read(receive, messages: list[dict], enough: float = math.inf) -> bool:
    """Append the body's messages to ``messages`` until it ends or holds ``enough`` bytes.

    False if the client disconnected.
    """
    size = sum(len(m.get("body", b"")) for m in messages)
    while (not messages or messages[-1].get("more_body", False)) and size < enough:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        messages.append(message)
        size += len(message.get("body", b""))
    return True
