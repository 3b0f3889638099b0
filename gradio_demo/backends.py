"""Where the demo sends audio: the service in the same process, or a service over HTTP.

A backend has ``predict(path) -> dict`` and ``timeline(path) -> dict`` (plain or ``async``). Each
returns the service's JSON body: the result, or an ``{"error": code, "message": text}`` dict for
input the service refuses. A backend may also raise; the demo then shows a generic message.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol

# Windows of the timeline the demo asks for (the service's defaults).
TIMELINE_WINDOW_S = 2.0
TIMELINE_HOP_S = 1.0


class Backend(Protocol):
    """What `gradio_demo.app.build_demo` needs. Methods may be ``async def``."""

    def predict(self, path: str) -> dict: ...

    def timeline(self, path: str) -> dict: ...


class InProcessBackend:
    """Calls the running `SER` instance's own logic (`analyse`, `analyse_timeline`).

    Used by the demo mounted on the service: no HTTP hop, the same validation, limits and
    adaptive batching as the endpoints. ``service`` defaults to `bentoml.get_current_service()`,
    resolved at the first call (the instance does not exist yet when the demo is mounted).
    """

    def __init__(self, service: Any | None = None):
        self._service = service

    @property
    def service(self) -> Any:
        if self._service is None:
            import bentoml

            self._service = bentoml.get_current_service()
        return self._service

    async def predict(self, path: str) -> dict:
        _, body = await self.service.analyse(Path(path))
        return body

    async def timeline(self, path: str) -> dict:
        _, body = await self.service.analyse_timeline(Path(path), TIMELINE_WINDOW_S, TIMELINE_HOP_S)
        return body


class RemoteBackend:
    """Calls a running service over HTTP with `bentoml.SyncHTTPClient`.

    The client is created at the first call (it reads the service's schema, so the service must
    be up by then, not when the demo starts). Refusals come back as the service's error dicts;
    an unreachable service becomes an ``unavailable`` error dict.
    """

    def __init__(
        self, url: str, timeout: float = 120.0, ready_timeout: float = 10.0, api_key: str | None = None
    ):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.ready_timeout = ready_timeout
        self.api_key = api_key  # Sent as `Authorization: Bearer <key>` (a service with SER_API_KEY).
        self._client = None
        self._lock = threading.Lock()

    def _get_client(self):
        with self._lock:
            if self._client is None:
                import bentoml

                self._client = bentoml.SyncHTTPClient(
                    self.url,
                    timeout=self.timeout,
                    server_ready_timeout=self.ready_timeout,
                    token=self.api_key or "",  # "" (not None): never BentoML's BENTO_CLOUD_API_KEY.
                )
            return self._client

    def _unavailable(self, e: Exception) -> dict:
        with self._lock:
            self._client = None  # Reconnect (and re-read the schema) next time.
        return {
            "error": "unavailable",
            "message": f"cannot reach the service at {self.url} ({type(e).__name__})",
        }

    def _call(self, endpoint: str, **kwargs) -> dict:
        import httpx
        from bentoml.exceptions import BentoMLException

        try:
            client = self._get_client()
        except (BentoMLException, httpx.HTTPError, OSError) as e:
            return self._unavailable(e)
        try:
            return getattr(client, endpoint)(**kwargs)
        except BentoMLException as e:
            return _error_dict(e)
        except (httpx.HTTPError, OSError) as e:
            return self._unavailable(e)

    def predict(self, path: str) -> dict:
        return self._call("predict", audio=Path(path))

    def timeline(self, path: str) -> dict:
        return self._call("timeline", audio=Path(path), window_s=TIMELINE_WINDOW_S, hop_s=TIMELINE_HOP_S)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _error_dict(e: Exception) -> dict:
    """The service's error body from a client exception, or a generic one with the status."""
    status = int(getattr(e, "error_code", 0) or 0)
    message = str(getattr(e, "message", "") or "")
    try:
        body = json.loads(message)
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body and "message" in body:
        return {"error": str(body["error"]), "message": str(body["message"])}
    if isinstance(body, dict) and "error" in body:  # BentoML's own validation errors.
        return {"error": "bad_request", "message": str(body["error"])[:500]}
    if status >= 500 or not status:
        return {"error": "service_error", "message": f"the service failed to answer (HTTP {status or '?'})"}
    return {"error": "bad_request", "message": f"the service refused the request (HTTP {status})"}
