"""HTTP hardening of the service: API key, CORS and an upload limit enforced before the body is read.

    install_middlewares(SER, SETTINGS)   # in service.py, once, after the service is defined

Three pure-ASGI middlewares, outermost first (BentoML adds a service's middlewares in order):

- CORS (starlette's `CORSMiddleware`), only when SER_CORS_ORIGINS lists origins: closed by
  default, so browsers on other origins cannot read answers. Outermost so preflights and 401s
  carry the CORS headers a browser needs.
- `APIKeyMiddleware`, only when SER_API_KEY or SER_API_KEY_FILE is set: every path except the
  health probes and metrics needs `Authorization: Bearer <key>` (compared in constant time);
  otherwise 401 JSON ``{"error": "unauthorized", ...}`` with ``WWW-Authenticate: Bearer``.
  The demo at /ui also accepts HTTP Basic with the key as password, so a browser can log in;
  SER_DEMO_PUBLIC=1 leaves /ui open instead (then anyone can use the model through the demo).
- `UploadLimitMiddleware`: 413 JSON ``audio_too_large`` when Content-Length is above the limit,
  without reading the body; for bodies without a length (chunked) it counts bytes as the app
  reads them and stops reading at the limit.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

OPEN_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})  # /healthz: BentoML's alias of /livez.
DEMO_PREFIX = "/ui"
MULTIPART_ALLOWANCE = 64 * 1024  # Boundaries, part headers and small fields around each file.


def read_api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The key from SER_API_KEY, or from the file SER_API_KEY_FILE names (a mounted secret)."""
    env = os.environ if environ is None else environ
    key, path = env.get("SER_API_KEY", ""), env.get("SER_API_KEY_FILE", "")
    if key and path:
        raise ValueError("set SER_API_KEY or SER_API_KEY_FILE, not both")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                key = f.read().strip()
        except OSError as e:
            raise ValueError(f"SER_API_KEY_FILE={path!r} cannot be read: {e.strerror}") from None
        if not key:
            raise ValueError(f"SER_API_KEY_FILE={path!r} is empty")
    key = key.strip()
    if key and (len(key) < 16 or any(c.isspace() for c in key)):
        raise ValueError("the API key must be at least 16 characters with no whitespace")
    return key or None


def parse_origins(raw: str) -> tuple[str, ...]:
    """SER_CORS_ORIGINS: comma-separated origins (``https://app.example.com``) or ``*``."""
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"SER_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com")
    return origins


async def send_json(send, status: int, body: dict, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _header(scope: dict, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


class APIKeyMiddleware:
    """Require ``Authorization: Bearer <api_key>`` on every path but `OPEN_PATHS`."""

    def __init__(self, app, api_key: str, demo_public: bool = False):
        self.app = app
        self.key = api_key.encode()
        self.demo_public = demo_public

    def _is_demo(self, path: str) -> bool:
        return path == DEMO_PREFIX or path.startswith(DEMO_PREFIX + "/")

    def _authorised(self, scope: dict) -> bool:
        value = (_header(scope, b"authorization") or b"").strip()
        scheme, _, credentials = value.partition(b" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == b"bearer":
            return hmac.compare_digest(credentials, self.key)
        if scheme == b"basic" and self._is_demo(scope["path"]):  # A browser's login to the demo.
            try:
                _, _, password = base64.b64decode(credentials, validate=True).partition(b":")
            except (binascii.Error, ValueError):
                return False
            return hmac.compare_digest(password, self.key)
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path in OPEN_PATHS or (self.demo_public and self._is_demo(path)) or self._authorised(scope):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        challenge = (
            b'Basic realm="ser demo", charset="UTF-8"' if self._is_demo(path) else b'Bearer realm="ser"'
        )
        await send_json(
            send,
            401,
            {
                "error": "unauthorized",
                "message": "missing or invalid API key: send 'Authorization: Bearer <key>'",
            },
            [(b"www-authenticate", challenge)],
        )


class _BodyTooLarge(Exception):
    pass


class UploadLimitMiddleware:
    """413 ``audio_too_large`` for request bodies above ``max_bytes`` (``batch_bytes`` on batch paths)."""

    def __init__(
        self, app, max_bytes: int, batch_bytes: int, batch_paths: Iterable[str] = ("/predict_batch",)
    ):
        self.app = app
        self.max_bytes = max_bytes
        self.batch_bytes = batch_bytes
        self.batch_paths = frozenset(batch_paths)

    async def _refuse(self, send, size: str, limit: int) -> None:
        await send_json(
            send,
            413,
            {
                "error": "audio_too_large",
                "message": f"the request body is {size} bytes; the limit is {limit:,} bytes",
            },
            [(b"connection", b"close")],
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.batch_bytes if scope["path"] in self.batch_paths else self.max_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length > limit:
                return await self._refuse(send, f"{length:,}", limit)
            if length >= 0:
                # The server stops at the declared length, so nothing more can arrive.
                return await self.app(scope, receive, send)

        state = {"received": 0, "too_large": False, "started": False}

        async def counting_receive():
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["too_large"] = True
                    raise _BodyTooLarge  # Stop reading: the rest of the body is never taken in.
            return message

        async def guarded_send(message):
            if state["too_large"] and not state["started"]:
                return  # Whatever the app answers to the aborted read, the answer is our 413.
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not state["too_large"]:
                raise
        if state["too_large"] and not state["started"]:
            await self._refuse(send, f"more than {limit:,}", limit)


def install_middlewares(service: Any, settings: Any) -> None:
    """Add CORS (if configured), the API key check (if configured) and the upload limit to ``service``."""
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        service.add_asgi_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    if settings.api_key:
        service.add_asgi_middleware(
            APIKeyMiddleware, api_key=settings.api_key, demo_public=settings.demo_public
        )
    per_file = settings.max_upload_bytes + MULTIPART_ALLOWANCE
    service.add_asgi_middleware(
        UploadLimitMiddleware, max_bytes=per_file, batch_bytes=per_file * settings.max_batch_files
    )
