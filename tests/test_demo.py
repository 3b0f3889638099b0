"""The Gradio demo: its UI over a fake backend, mounted at /ui on a real server, standalone, in a browser.

1. `build_demo` with a fake backend, launched locally and driven by gradio_client;
2. `bentoml serve service:SER` (model from the `trained_store` fixture): /ui/ answers without any
   5xx and predicts through the in-process backend;
3. `python -m gradio_demo --url <that server>` (the remote backend);
4. headless Debian chromium via selenium: upload a synthetic clip, read the label, take a
   screenshot (skips with the reason when chromium, chromedriver or selenium are absent);
   `make screenshot` saves it as docs/demo.png, with the embedded default model served.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
import soundfile as sf
from helpers import Served, free_port, serve, stop

from ser.audio import load_audio
from ser.errors import SERError
from ser.labels import EMOTIONS

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The README's screenshot is refreshed only on request, so ordinary test runs leave git clean.
SCREENSHOT = REPO / "docs" / "demo.png"
UPDATE_SCREENSHOT = os.environ.get("SER_UPDATE_SCREENSHOT") == "1"
TIMEOUT = 60
UPLOAD_LIMIT = 2_000_000  # SER_MAX_UPLOAD_BYTES of the test server: the demo's upload limit too.
PRETTY = [e.replace("_", " ") for e in EMOTIONS]


# --- shared inputs -------------------------------------------------------------------------------
@dataclass
class Clips:
    examples: list[tuple[str, str]]  # The demo's synthetic examples (path, label).
    short: Path  # One synthetic clip, ~1.4 s.
    long: Path  # All seven synthetic clips in turn, ~16 s: gets a timeline.
    too_long: Path  # ~47 s: above the predict limit (30 s), answered by the timeline alone.
    junk: Path  # Not audio.


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Clips:
    from gradio_demo.examples import synthetic_examples

    root = tmp_path_factory.mktemp("demo_clips")
    examples = synthetic_examples(root)
    long = Path(examples[-1][0])
    y, sr = sf.read(long, dtype="float32")
    too_long = root / "too_long.wav"
    sf.write(too_long, np.tile(y, 3), sr)
    junk = root / "junk.wav"
    junk.write_bytes(b"this is not audio" * 20)
    return Clips(examples, Path(examples[0][0]), long, too_long, junk)


def _client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def _analyse(client, path: Path) -> tuple:
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/analyse")


def _assert_label(label: dict) -> str:
    """The gr.Label value: the top emotion and all seven probabilities; returns the top label."""
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert sorted(confidences) == sorted(PRETTY)
    assert abs(sum(confidences.values()) - 1) < 1e-3
    assert label["label"] == max(confidences, key=confidences.get)
    return label["label"]


def _assert_plot(value) -> None:
    assert isinstance(value, dict) and value["type"] == "matplotlib", str(value)[:200]
    assert value["plot"].startswith("data:image/")


def _timeline_value(update) -> dict | None:
    """The timeline plot output: an update whose value is None while hidden."""
    assert update.get("visible") is (update.get("value") is not None), str(update)[:200]
    return update.get("value")


def _assert_no_leak(text: str) -> None:
    for secret in ("Traceback", "site-packages", str(REPO)):
        assert secret not in text, f"{secret!r} in {text[:500]}"


# --- 1. the UI over a fake backend ---------------------------------------------------------------
class FakeBackend:
    """Answers like the service: the real decoder and limits, fixed probabilities (happy wins)."""

    max_duration_s = 30.0

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def _load(self, path: str, max_s: float):
        from ser.audio import AudioLimits

        return load_audio(path, AudioLimits(max_duration_s=max_s))

    def predict(self, path: str) -> dict:
        self.calls.append(("predict", Path(path).name))
        if "boom" in Path(path).name:
            raise RuntimeError("backend exploded at /secret/path")
        try:
            y = self._load(path, self.max_duration_s)
        except SERError as e:
            return e.to_dict()
        probs = dict.fromkeys(EMOTIONS, 0.04)
        probs["happy"] = 0.76
        return {
            "emotion": "happy",
            "confidence": 0.76,
            "probabilities": probs,
            "duration_s": round(len(y) / 16_000, 3),
            "model": "fake:1",
        }

    def timeline(self, path: str) -> dict:
        self.calls.append(("timeline", Path(path).name))
        y = self._load(path, 600)
        duration, segments, start = len(y) / 16_000, [], 0.0
        while start + 2 <= duration:
            emotion = EMOTIONS[int(start) % len(EMOTIONS)]
            probs = dict.fromkeys(EMOTIONS, 0.05)
            probs[emotion] = 0.7
            segments.append(
                {
                    "start_s": start,
                    "end_s": start + 2,
                    "emotion": emotion,
                    "confidence": 0.7,
                    "probabilities": probs,
                }
            )
            start += 1
        summary = dict.fromkeys(EMOTIONS, 0.1)
        summary["sad"] = 0.4
        return {
            "duration_s": round(duration, 3),
            "speech_s": round(duration, 3),
            "window_s": 2.0,
            "hop_s": 1.0,
            "segments": segments,
            "summary": summary,
            "model": "fake:1",
        }


@pytest.fixture(scope="module")
def fake(clips: Clips):
    """(url, backend) of the demo over `FakeBackend`, launched in this process."""
    from gradio_demo.app import build_demo, launch_kwargs

    backend = FakeBackend()
    demo = build_demo(backend, examples=clips.examples)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True, show_error=True, **launch_kwargs())
    try:
        yield f"http://127.0.0.1:{port}/", backend
    finally:
        demo.close()


def test_fake_clip_gives_label_and_probabilities(fake, clips: Clips):
    url, backend = fake
    status, label, signal_plot, timeline = _analyse(_client(url), clips.short)
    assert _assert_label(label) == "happy"
    assert "**happy** with 76% confidence" in status and "fake:1" in status
    _assert_plot(signal_plot)
    assert _timeline_value(timeline) is None  # A short clip gets no timeline.
    assert backend.calls[-1] == ("predict", clips.short.name)


def test_fake_long_clip_gets_a_timeline(fake, clips: Clips):
    url, backend = fake
    status, label, _, timeline = _analyse(_client(url), clips.long)
    assert _assert_label(label) == "happy"
    assert f"{sf.info(clips.long).duration:.1f} s analysed" in status
    _assert_plot(_timeline_value(timeline))
    assert backend.calls[-2:] == [("predict", clips.long.name), ("timeline", clips.long.name)]


def test_fake_too_long_for_predict_shows_the_timeline(fake, clips: Clips):
    url, _ = fake
    status, label, _, timeline = _analyse(_client(url), clips.too_long)
    assert _assert_label(label) == "sad"  # The summary: shares of the speech time.
    assert "too long for one prediction" in status
    _assert_plot(_timeline_value(timeline))


def test_fake_bad_file_gives_a_readable_message(fake, clips: Clips):
    url, _ = fake
    status, label, signal_plot, timeline = _analyse(_client(url), clips.junk)
    assert status.startswith("**Could not analyse this recording:**")
    assert "not a supported audio file" in status and "invalid_audio" in status
    assert not label and signal_plot is None and _timeline_value(timeline) is None
    _assert_no_leak(status)


def test_fake_backend_failure_gives_a_generic_message(fake, clips: Clips, tmp_path: Path):
    url, _ = fake
    boom = tmp_path / "boom.wav"
    shutil.copy(clips.short, boom)
    status, label, _, _ = _analyse(_client(url), boom)
    assert "The service failed to analyse this recording" in status
    assert "exploded" not in status and "/secret" not in status and not label


def test_examples_are_synthetic_without_tess(monkeypatch, tmp_path: Path):
    from gradio_demo import examples

    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SER_TESS_DIR", str(tmp_path / "no-tess"))
    found = examples.all_examples()
    assert [name for _, name in found][:7] == [f"synthetic · {e}" for e in PRETTY]
    assert len(found) == 8 and all(Path(p).is_file() for p, _ in found)
    assert all(str(tmp_path / "cache") in p for p, _ in found)
    assert sf.info(found[-1][0]).duration > 6  # The long one shows the timeline.
    # Deterministic: a second build rewrites nothing and lists the same files.
    assert examples.all_examples() == found


@pytest.mark.tess
def test_examples_include_tess_clips(tess_dir: Path, monkeypatch, tmp_path: Path):
    from gradio_demo import examples

    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SER_TESS_DIR", str(tess_dir))
    tess = [(p, name) for p, name in examples.all_examples() if name.startswith("TESS")]
    assert [name for _, name in tess] == [f"TESS · {e}" for e in PRETTY]
    assert all(Path(p).is_relative_to(tess_dir) for p, _ in tess)  # Read in place, never copied.


# --- 2. mounted at /ui on a real server ----------------------------------------------------------
def _demo_settings(cache: Path) -> dict[str, str]:
    return {
        "GRADIO_ANALYTICS_ENABLED": "False",
        "SER_CACHE_DIR": str(cache),
        # No TESS examples on the page: the screenshot stays the same everywhere (and synthetic).
        "SER_TESS_DIR": str(cache / "no-tess"),
    }


def _env(home: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SER_")}
    env.update(BENTOML_HOME=str(home), BENTOML_DO_NOT_TRACK="True", TF_CPP_MIN_LOG_LEVEL="2")
    env.update(_demo_settings(cache))
    return env


@pytest.fixture(scope="module")
def server(request, tmp_path_factory) -> Served:
    # `make screenshot` serves the embedded default model from its own store (SER_DEMO_STORE), so
    # the README's picture shows a trained model; the tests' small model answers near-uniformly.
    store = os.environ.get("SER_DEMO_STORE")
    home = Path(store) if store else request.getfixturevalue("trained_store")
    root = tmp_path_factory.mktemp("demo_server")
    settings = _demo_settings(root / "cache")
    with serve(home, root, SER_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT), **settings) as served:
        yield served


def _server_5xx(server: Served) -> list[str]:
    return [line for line in server.log.read_text(errors="replace").splitlines() if "status=5" in line]


def test_ui_page_answers_without_5xx(server: Served):
    page = requests.get(f"{server.url}/ui/", timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:500]
    assert "<gradio-app" in page.text or "gradio" in page.text.lower()
    for path in ("/ui", "/ui/config", "/ui/gradio_api/info"):
        r = requests.get(f"{server.url}{path}", timeout=TIMEOUT)
        assert r.status_code < 400, (path, r.status_code, r.text[:300])
    # The assets the page loads (scripts and stylesheets under /ui/).
    assets = sorted(set(re.findall(r'(?:src|href)="(/ui/[^"]+\.(?:js|css))"', page.text)))[:10]
    for asset in assets:
        assert requests.get(f"{server.url}{asset}", timeout=TIMEOUT).status_code == 200, asset
    assert not _server_5xx(server), _server_5xx(server)
    # The API is unchanged beside the mount.
    assert requests.get(f"{server.url}/readyz", timeout=TIMEOUT).status_code == 200


def test_ui_predicts_in_process(server: Served, clips: Clips):
    client = _client(f"{server.url}/ui/")
    status, label, signal_plot, timeline = _analyse(client, clips.short)
    top = _assert_label(label)
    assert f"**{top}** with" in status and "ser_lstm:" in status
    _assert_plot(signal_plot)
    assert _timeline_value(timeline) is None

    status, _, signal_plot, _ = _analyse(client, clips.junk)
    assert "**Could not analyse this recording:**" in status and "invalid_audio" in status
    assert signal_plot is None
    _assert_no_leak(status)
    assert not _server_5xx(server), _server_5xx(server)


def test_ui_refuses_uploads_above_the_service_limit(server: Served, tmp_path: Path):
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (UPLOAD_LIMIT + 1))
    with big.open("rb") as f:
        r = requests.post(f"{server.url}/ui/gradio_api/upload", files={"files": f}, timeout=TIMEOUT)
    assert r.status_code == 413, r.text[:300]
    assert str(UPLOAD_LIMIT) in r.text


def test_ui_long_recording_gets_the_timeline(server: Served, clips: Clips):
    status, label, _, timeline = _analyse(_client(f"{server.url}/ui/"), clips.long)
    assert f"**{_assert_label(label)}** with" in status
    assert f"{sf.info(clips.long).duration:.1f} s analysed" in status
    _assert_plot(_timeline_value(timeline))
    # The demo's in-process calls go through the service's batching model method like /predict.
    metrics = requests.get(f"{server.url}/metrics", timeout=TIMEOUT).text
    assert "ser_predictions_total" in metrics


# --- 3. standalone against that server -----------------------------------------------------------
def test_standalone_demo_against_the_server(server: Served, clips: Clips, tmp_path: Path):
    port = free_port()
    log = tmp_path / "standalone.log"
    cmd = [str(BIN / "python"), "-m", "gradio_demo", "--url", server.url, "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp_path,  # Runs from anywhere: the package is installed.
            env=_env(tmp_path, tmp_path / "cache"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"demo exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"demo not up in 90 s:\n{log.read_text()[-3000:]}"
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        client = _client(url)
        status, label, signal_plot, _ = _analyse(client, clips.short)
        assert f"**{_assert_label(label)}** with" in status and "ser_lstm:" in status
        _assert_plot(signal_plot)
        status, label, _, _ = _analyse(client, clips.junk)
        assert "not a supported audio file" in status and "invalid_audio" in status and not label
    finally:
        stop(proc)


def test_standalone_reports_an_unreachable_service(clips: Clips):
    from gradio_demo.backends import RemoteBackend

    backend = RemoteBackend(f"http://127.0.0.1:{free_port()}", ready_timeout=1)
    body = backend.predict(str(clips.short))
    assert body["error"] == "unavailable" and "cannot reach the service" in body["message"]


# --- 4. a real browser ---------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _browser_missing() -> str | None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "chromium or chromedriver not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install selenium; it is in the dev extra)"
    return None


@pytest.fixture()
def browser(tmp_path: Path):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
        "--window-size=1200,1200",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def _save_small_png(driver, path: Path, width: int = 1200) -> None:
    """The whole page (viewport fitted to the last block), palette-quantised to stay small."""
    from PIL import Image

    def viewport(height: int) -> None:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        time.sleep(0.7)  # Let the layout settle.

    viewport(3000)  # Taller than the page: Gradio's container fills the viewport, its blocks do not.
    bottom = driver.execute_script(
        "return Math.max(...Array.from(document.querySelectorAll('.gradio-container .block'))"
        ".map(e => e.getBoundingClientRect().bottom)) + window.scrollY"
    )
    viewport(min(int(bottom) + 12, 4000))
    raw = path.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))
    with Image.open(raw) as image:
        image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    raw.unlink()


def test_browser_upload_shows_the_emotion(server: Served, clips: Clips, browser, tmp_path):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def status_text(driver) -> str:
        return driver.find_element(By.ID, "ser-status").text

    browser.get(f"{server.url}/ui/")
    # Gradio re-renders components while an output updates: an element found a moment ago may be
    # gone when asked about, so a wait asks again instead of failing on a stale reference.
    wait = WebDriverWait(browser, TIMEOUT, ignored_exceptions=(StaleElementReferenceException,))
    file_input = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#ser-audio input[type=file]"))
    file_input.send_keys(str(clips.long))  # A synthetic clip: the screenshot is commit-safe.
    wait.until(lambda d: "confidence" in status_text(d))
    top = re.match(r"(.+?) with \d+% confidence", status_text(browser)).group(1)
    assert top in PRETTY
    label_text = browser.find_element(By.ID, "ser-label").text
    assert top in label_text and all(e in label_text for e in PRETTY)
    wait.until(lambda d: d.find_element(By.ID, "ser-timeline").is_displayed())
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ser-signal img, #ser-timeline img")) == 2)
    _assert_no_leak(browser.find_element(By.TAG_NAME, "body").text)
    shot = SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "demo.png"
    _save_small_png(browser, shot)
    assert shot.stat().st_size < 400_000

    # One click on an example analyses it: a short clip, so the timeline goes away.
    before = status_text(browser)
    example = next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == "synthetic · angry")
    example.click()
    wait.until(lambda d: status_text(d) != before and "confidence" in status_text(d))
    wait.until(
        lambda d: (
            not d.find_elements(By.ID, "ser-timeline")
            or not d.find_element(By.ID, "ser-timeline").is_displayed()
        )
    )

    # A bad file (on a fresh page): the service's message in the page and in a warning toast.
    browser.get(f"{server.url}/ui/")
    file_input = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#ser-audio input[type=file]"))
    file_input.send_keys(str(clips.junk))
    wait.until(lambda d: "Could not analyse this recording" in status_text(d))
    assert "not a supported audio file" in status_text(browser)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").text.count("not a supported audio file") >= 2)
    _assert_no_leak(browser.find_element(By.TAG_NAME, "body").text)
    assert not _server_5xx(server), _server_5xx(server)


def _bare_service(workers: int = 2):
    import bentoml

    @bentoml.service(name="bare", workers=workers)
    class Bare:
        @bentoml.api
        def hello(self) -> str:
            return "hi"

    return Bare


def test_mounting_the_demo_runs_one_worker(monkeypatch):
    """Gradio's sessions live in one process: the mounted demo holds the service to one worker."""
    from gradio_demo.mount import mount_demo

    monkeypatch.delenv("SER_WORKERS", raising=False)
    monkeypatch.setenv("SER_DEMO", "auto")
    service = mount_demo("/ui")(_bare_service(workers=2))
    assert [path for _, path, _ in service.mount_apps] == ["/ui"]
    assert service.config["workers"] == 1


def test_several_workers_leave_the_demo_out_or_refuse(monkeypatch):
    from gradio_demo.mount import mount_demo

    monkeypatch.setenv("SER_WORKERS", "2")
    monkeypatch.setenv("SER_DEMO", "auto")
    service = mount_demo("/ui")(_bare_service())
    assert not service.mount_apps
    assert service.config["workers"] == 2
    monkeypatch.setenv("SER_DEMO", "1")
    with pytest.raises(ValueError, match="SER_WORKERS=2 runs several"):
        mount_demo("/ui")(_bare_service())
