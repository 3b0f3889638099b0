"""Security: API key, CORS, the upload limit, upload file names, temp files, safe model loading.

The middlewares of ser/security.py are checked in-process on a small Starlette app (fast), then
on a real `bentoml serve` with SER_API_KEY, SER_CORS_ORIGINS and a 1 MB upload limit (slow).
pip-audit of the pinned requirements runs when a vulnerability database is reachable.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import hostile
import pytest
import requests
from helpers import BIN, REPO, serve
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ser.security import OPEN_PATHS, install_middlewares, parse_origins, read_api_key

KEY = "k3y-for-tests-0123456789abcdef"
ORIGIN = "https://app.example.com"
BEARER = {"Authorization": f"Bearer {KEY}"}
TIMEOUT = 30


# --- settings --------------------------------------------------------------------------------------
def test_api_key_from_env_or_file(tmp_path):
    assert read_api_key({}) is None
    assert read_api_key({"SER_API_KEY": f"  {KEY}\n"}) == KEY
    secret = tmp_path / "key"
    secret.write_text(KEY + "\n")
    assert read_api_key({"SER_API_KEY_FILE": str(secret)}) == KEY
    with pytest.raises(ValueError, match="not both"):
        read_api_key({"SER_API_KEY": KEY, "SER_API_KEY_FILE": str(secret)})
    with pytest.raises(ValueError, match="cannot be read"):
        read_api_key({"SER_API_KEY_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        read_api_key({"SER_API_KEY_FILE": str(tmp_path / "empty")})
    with pytest.raises(ValueError, match="at least 16"):
        read_api_key({"SER_API_KEY": "short"})


def test_key_never_in_the_settings_repr(monkeypatch):
    from ser.settings import Settings

    monkeypatch.setenv("SER_API_KEY", KEY)
    settings = Settings.from_env()
    assert settings.api_key == KEY and KEY not in repr(settings)


def test_cors_origins_parsing():
    assert parse_origins("") == ()
    assert parse_origins(f"{ORIGIN}/, http://localhost:5173") == (ORIGIN, "http://localhost:5173")
    assert parse_origins("*") == ("*",)
    with pytest.raises(ValueError, match="not an origin"):
        parse_origins("app.example.com")


# --- the middlewares, in-process -------------------------------------------------------------------
def _app(**settings) -> TestClient:
    """A Starlette app with the service's middlewares, installed as service.py installs them."""
    collected = []
    service = SimpleNamespace(add_asgi_middleware=lambda cls, **options: collected.append((cls, options)))
    defaults = dict(
        api_key=None, demo_public=False, cors_origins=(), max_upload_bytes=1000, max_batch_files=4
    )
    install_middlewares(service, SimpleNamespace(**{**defaults, **settings}))

    async def echo(request):
        body = await request.body()
        return JSONResponse({"received": len(body)})

    async def text(request):
        return PlainTextResponse("ok")

    routes = [Route(p, text) for p in [*OPEN_PATHS, "/docs.json", "/ui", "/ui/config"]]
    routes += [Route(p, echo, methods=["POST"]) for p in ("/predict", "/predict_batch", "/timeline")]
    app = Starlette(routes=routes)
    for cls, options in reversed(collected):  # Starlette's order: the first added is outermost.
        app = cls(app, **options)
    return TestClient(app)


def test_no_key_configured_means_open():
    client = _app()
    assert client.post("/predict", content=b"x").status_code == 200
    assert client.get("/docs.json").status_code == 200


def test_key_required_everywhere_but_probes():
    client = _app(api_key=KEY)
    for path in OPEN_PATHS:
        assert client.get(path).status_code == 200, path
    for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789"}, {"Authorization": KEY}):
        for path in ("/predict", "/predict_batch", "/timeline"):
            r = client.post(path, content=b"x", headers=headers)
            assert r.status_code == 401
            assert r.json()["error"] == "unauthorized" and r.json()["message"]
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/docs.json", headers=headers).status_code == 401
    assert client.post("/predict", content=b"x", headers=BEARER).status_code == 200
    assert (
        client.post("/predict", content=b"x", headers={"Authorization": f"bearer  {KEY}"}).status_code == 200
    )
    assert client.get("/docs.json", headers=BEARER).status_code == 200


def test_demo_accepts_a_browser_login_or_is_public_when_asked():
    client = _app(api_key=KEY)
    r = client.get("/ui/config")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    login = {"Authorization": "Basic " + base64.b64encode(f"anyone:{KEY}".encode()).decode()}
    assert client.get("/ui/config", headers=login).status_code == 200
    assert client.get("/ui/config", headers=BEARER).status_code == 200
    bad = {"Authorization": "Basic " + base64.b64encode(b"anyone:guess").decode()}
    assert client.get("/ui/config", headers=bad).status_code == 401
    assert client.get("/ui", headers={"Authorization": "Basic !!notbase64"}).status_code == 401
    # Basic is for the demo's pages only; the API takes the bearer token.
    assert client.post("/predict", content=b"x", headers=login).status_code == 401
    public = _app(api_key=KEY, demo_public=True)
    assert public.get("/ui/config").status_code == 200
    assert public.post("/predict", content=b"x").status_code == 401


def test_cors_closed_by_default_and_open_to_configured_origins():
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    closed = _app()
    assert "access-control-allow-origin" not in closed.get("/livez", headers={"Origin": ORIGIN}).headers
    assert "access-control-allow-origin" not in closed.options("/predict", headers=preflight).headers

    client = _app(cors_origins=(ORIGIN,), api_key=KEY)
    r = client.options("/predict", headers=preflight)  # A preflight carries no key: answered by CORS.
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = client.post("/predict", content=b"x", headers={"Origin": ORIGIN})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN  # Readable 401.
    other = {**preflight, "Origin": "https://evil.example"}
    assert "access-control-allow-origin" not in client.options("/predict", headers=other).headers
    r = client.post("/predict", content=b"x", headers={"Origin": "https://evil.example", **BEARER})
    assert "access-control-allow-origin" not in r.headers


def test_upload_limit_by_content_length_and_by_counting():
    client = _app()  # 1000 bytes + the multipart allowance (64 KiB) per file; × 4 on /predict_batch.
    limit = 1000 + 64 * 1024
    assert client.post("/predict", content=b"x" * limit).json() == {"received": limit}
    r = client.post("/predict", content=b"x" * (limit + 1))
    assert r.status_code == 413 and r.json()["error"] == "audio_too_large"
    assert client.post("/predict_batch", content=b"x" * (3 * limit)).status_code == 200
    assert client.post("/predict_batch", content=b"x" * (4 * limit + 1)).status_code == 413

    def chunks(n):  # No Content-Length: sent chunked, counted by the middleware.
        for _ in range(n):
            yield b"y" * 10_000

    assert client.post("/timeline", content=chunks(3)).json() == {"received": 30_000}
    r = client.post("/timeline", content=chunks(100))
    assert r.status_code == 413 and r.json()["error"] == "audio_too_large"
    # (That reading stops at the limit is checked on the real server: the test client buffers.)


# --- uploads, models -------------------------------------------------------------------------------
def test_upload_file_names_never_reach_the_file_system(tmp_path, monkeypatch):
    import io

    from _bentoml_sdk.validators import FileSchema
    from starlette.datastructures import UploadFile

    from ser.compat import harden_uploads

    harden_uploads()
    monkeypatch.setattr("bentoml._internal.context.request_temp_dir", lambda: str(tmp_path))
    for name in ("../../etc/passwd.wav", "a" * 300 + ".wav", "..", "/"):
        path = FileSchema().decode(UploadFile(io.BytesIO(b"RIFF"), filename=name))
        assert path.parent == tmp_path and path.read_bytes() == b"RIFF"
        assert "passwd" not in path.name and "aaaa" not in path.name
    assert not Path("/etc/passwd.wav").exists()


def test_models_are_loaded_in_safe_mode():
    """Keras's safe_mode refuses models whose config would run arbitrary code (Lambda layers)."""
    import ast

    calls = 0
    for path in [REPO / "service.py", *(REPO / "ser").rglob("*.py"), *(REPO / "training").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load_model":
                calls += 1
                safe = {k.arg: k.value for k in node.keywords}.get("safe_mode")
                assert isinstance(safe, ast.Constant) and safe.value is True, f"{path.name}:{node.lineno}"
    assert calls, "no keras load_model call found"


# --- pip-audit -------------------------------------------------------------------------------------
# Findings reviewed and accepted, by package: the reason (the README lists them).
ACCEPTED_VULNERABILITIES: dict[str, str] = {}


@pytest.mark.slow
@pytest.mark.parametrize("requirements", ["lock.txt", "serve.txt"])
def test_pip_audit(requirements):
    audit = BIN / "pip-audit"
    if not audit.exists():
        pytest.skip("pip-audit is not installed: pip install -e '.[dev]'")
    cmd = [str(audit), "-r", str(REPO / "requirements" / requirements), "--no-deps", "--disable-pip"]
    cmd += ["--format", "json", "--progress-spinner", "off"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        if "NameResolutionError" in done.stderr or "ConnectionError" in done.stderr:
            pytest.skip(f"pip-audit cannot reach its vulnerability database: {done.stderr.strip()[-300:]}")
        raise AssertionError(done.stdout[-2000:] + done.stderr[-2000:]) from None
    deps = report["dependencies"]
    skipped = [d for d in deps if "skip_reason" in d]
    if deps and len(skipped) == len(deps):
        pytest.skip(
            f"pip-audit audited none of the {len(deps)} pinned packages: the PyPI JSON API "
            "(pypi.org/pypi/<name>/<version>/json) it queries is not reachable from here "
            f"(first reason: {skipped[0]['skip_reason']})"
        )
    found = [
        f"{d['name']}=={d['version']}: {v['id']} (fixed in: {', '.join(v.get('fix_versions', [])) or '-'})"
        for d in deps
        for v in d.get("vulns", [])
        if d["name"] not in ACCEPTED_VULNERABILITIES
    ]
    assert not found, "\n".join(found)


# --- a real server with a key, CORS and a 1 MB upload limit ---------------------------------------
@pytest.fixture(scope="module")
def server(trained_store, tmp_path_factory):
    settings = {"SER_API_KEY": KEY, "SER_CORS_ORIGINS": ORIGIN, "SER_MAX_UPLOAD_BYTES": "1000000"}
    with serve(trained_store, tmp_path_factory.mktemp("security"), **settings) as served:
        yield served


WAV = hostile.encode(hostile.tone(1.5))


def _post(server, path, files, headers=None, data=None):
    return requests.post(f"{server.url}{path}", files=files, data=data, headers=headers, timeout=TIMEOUT)


API_CALLS = [
    ("/predict", {"audio": ("a.wav", WAV)}),
    ("/predict_batch", [("audios", ("a.wav", WAV)), ("audios", ("b.wav", WAV))]),
    ("/timeline", {"audio": ("a.wav", WAV)}),
]


@pytest.mark.slow
@pytest.mark.parametrize(("path", "files"), API_CALLS, ids=[p for p, _ in API_CALLS])
def test_server_api_needs_the_key(server, path, files):
    for headers in (
        None,
        {"Authorization": "Bearer not-the-key-0123456789"},
        {"Authorization": f"Basic {KEY}"},
    ):
        r = _post(server, path, files, headers)
        assert r.status_code == 401, r.text[:300]
        assert r.json()["error"] == "unauthorized" and r.json()["message"]
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = _post(server, path, files, BEARER)
    assert r.status_code == 200, r.text[:300]


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/predict", "/timeline"])
def test_server_raw_body_needs_the_key_and_keeps_the_upload_limit(server, path):
    """The audio as the body (ser/raw_upload.py) is answered inside the API key and upload limit."""
    audio = {"Content-Type": "audio/wav"}
    for headers in (audio, {**audio, "Authorization": "Bearer not-the-key-0123456789"}):
        r = requests.post(f"{server.url}{path}", data=WAV, headers=headers, timeout=TIMEOUT)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized", r.text[:300]
    r = requests.post(f"{server.url}{path}", data=WAV, headers={**audio, **BEARER}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    # Chunked, no length: refused once past the limit, never waiting for the rest.
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunks = [b"x" * 65_536] * 40  # 2.6 MB that never ends.
    started = time.perf_counter()
    _assert_413(_raw(server, head, [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks]))
    assert time.perf_counter() - started < 10


@pytest.mark.slow
def test_server_probes_open_and_everything_else_closed(server):
    for path in ("/livez", "/healthz", "/readyz", "/metrics"):
        assert requests.get(f"{server.url}{path}", timeout=TIMEOUT).status_code == 200, path
    for path in ("/", "/docs.json", "/schema.json", "/ui/", "/ui/config"):
        assert requests.get(f"{server.url}{path}", timeout=TIMEOUT).status_code == 401, path
        assert requests.get(f"{server.url}{path}", headers=BEARER, timeout=TIMEOUT).status_code == 200, path


@pytest.mark.slow
def test_server_demo_takes_a_browser_login(server):
    r = requests.get(f"{server.url}/ui/", timeout=TIMEOUT)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    r = requests.get(f"{server.url}/ui/", auth=("me", KEY), timeout=TIMEOUT)
    assert r.status_code == 200 and "<html" in r.text.lower()


@pytest.mark.slow
def test_server_python_client_and_remote_demo_backend_with_the_key(server, tmp_path):
    import bentoml

    from gradio_demo.backends import RemoteBackend

    clip = tmp_path / "clip.wav"
    clip.write_bytes(WAV)
    with bentoml.SyncHTTPClient(server.url, token=KEY, timeout=TIMEOUT) as client:
        assert "emotion" in client.predict(audio=clip)
    backend = RemoteBackend(server.url, api_key=KEY)
    try:
        assert "emotion" in backend.predict(str(clip))
    finally:
        backend.close()
    keyless = RemoteBackend(server.url)
    try:
        assert keyless.predict(str(clip))["error"] in ("unavailable", "bad_request")
    finally:
        keyless.close()


@pytest.mark.slow
def test_server_cors(server):
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    r = requests.options(f"{server.url}/predict", headers=preflight, timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    r = _post(server, "/predict", {"audio": ("a.wav", WAV)}, {"Origin": ORIGIN, **BEARER})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
    evil = {**preflight, "Origin": "https://evil.example"}
    r = requests.options(f"{server.url}/predict", headers=evil, timeout=TIMEOUT)
    assert "access-control-allow-origin" not in r.headers


def _raw(server, head: bytes, body_chunks, timeout: float = 15) -> bytes:
    """Send ``head`` then each chunk (stopping if the server closes), then read the answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and b'"message"' not in answer:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not data:
                break
            answer += data
    return answer


def _assert_413(answer: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(body)["error"] == "audio_too_large"


@pytest.mark.slow
def test_server_oversized_upload_refused_before_reading(server):
    # 3 MB declared, 64 KB sent: the answer comes at once, without the rest of the body.
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 3000000\r\n\r\n"
    )
    started = time.perf_counter()
    _assert_413(_raw(server, head, [b"--b\r\n" + b"x" * 65_000]))
    assert time.perf_counter() - started < 5
    # Chunked, no length: refused once past the limit, never waiting for the terminating chunk.
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    part = b'--b\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
    chunks = [part] + [b"x" * 65_536] * 40  # 2.6 MB of a file part that never ends.
    started = time.perf_counter()
    _assert_413(_raw(server, head, [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks]))
    assert time.perf_counter() - started < 10
    # A real client's oversized upload: requests sends it all (the 413 may cut it off).
    try:
        r = _post(server, "/predict", {"audio": ("big.wav", b"\x00" * 1_200_000)}, BEARER)
        assert r.status_code == 413 and r.json()["error"] == "audio_too_large"
    except requests.ConnectionError:
        pass  # The server closed the connection while the client was still sending: also refused.
    # Within the limit is fine, and /predict_batch takes up to SER_MAX_BATCH_FILES such files.
    near = hostile.encode(hostile.tone(25.0))  # 800 KB
    assert _post(server, "/predict", {"audio": ("near.wav", near)}, BEARER).status_code == 200
    files = [("audios", (f"{i}.wav", near)) for i in range(2)]  # 1.6 MB in one request.
    assert _post(server, "/predict_batch", files, BEARER).status_code == 200


@pytest.mark.slow
def test_server_file_names_and_temp_files(server):
    names = [
        "../../etc/passwd.wav",
        "..\\..\\windows\\win.ini",
        "a" * 300 + ".wav",
        "é" * 200 + ".wav",
        "..",
        "",
    ]
    for name in names:
        r = _post(server, "/predict", {"audio": (name, WAV)}, BEARER)
        assert r.status_code == 200, (name[:40], r.text[:300])
    r = _post(server, "/predict_batch", [("audios", (n, WAV)) for n in names[:4]], BEARER)
    assert r.status_code == 200 and all("emotion" in x for x in r.json()["results"]), r.text[:300]
    assert not Path("/etc/passwd.wav").exists()
    # BentoML keeps a pool of per-request temp folders (bentoml-request-*) and empties each after
    # its request; nothing named by a client appears anywhere under the server's TMPDIR or cwd.
    request_dirs = list(server.tmpdir.glob("bentoml-request-*"))
    assert request_dirs, sorted(p.name for p in server.tmpdir.iterdir())
    deadline = time.monotonic() + 10
    while (left := [p for d in request_dirs for p in d.rglob("*")]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []
    suspicious = ("passwd", "win.ini", "aaaaaaaa", "éééé")
    hits = [p for p in server.tmpdir.rglob("*") if any(s in p.name for s in suspicious)]
    hits += [p for p in REPO.iterdir() if any(s in p.name for s in suspicious)]
    hits += [p for d in request_dirs if (p := (d / "../../etc/passwd.wav").resolve()).exists()]
    assert hits == [], hits[:5]


@pytest.mark.slow
def test_server_demo_works_in_a_browser_logged_in_with_the_key(server, tmp_path):
    """After a Basic login a browser sends the credentials with every request under /ui/; the
    headless browser gets the same header through the DevTools protocol (credentials in the URL
    would not do: Gradio's page builds fetch() URLs from its location, and fetch refuses them)."""
    import shutil
    import tempfile

    chromium, chromedriver = (
        shutil.which("chromium") or shutil.which("chromium-browser"),
        shutil.which("chromedriver"),
    )
    if not chromium or not chromedriver:
        pytest.skip("chromium or chromedriver not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (dev extra)")
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = tmp_path / "clip.wav"
    clip.write_bytes(WAV)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
    ):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}")
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    try:
        login = base64.b64encode(f"me:{KEY}".encode()).decode()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {login}"}}
        )
        driver.get(f"{server.url}/ui/")
        # Gradio swaps elements as outputs update: a stale reference means look again.
        wait = WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,))
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#ser-audio input[type=file]")).send_keys(
            str(clip)
        )
        wait.until(lambda d: "confidence" in d.find_element(By.ID, "ser-status").text)
    finally:
        driver.quit()
