"""The container image: built from the bento, served by podman (or docker), compared with `bentoml serve`.

Needs a container engine (podman here, via ../shared/tools/local-base-image; .ci/run installs it)
and skips with the reason when there is none. Builds the default (slim, LiteRT) bentofile.yaml.
Prints the image size (total, and added to its base image), the seconds from `run` to the first
answered prediction and the container's RSS; it asserts behaviour only (the timing targets are
`make bench`'s, through loadtests/coldstart.py).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import REPO, encode, tone
from helpers import answered, free_port, response_status, send_whole_requests, wait_ready

from loadtests.coldstart import BASE_IMAGE, container_rss

pytestmark = pytest.mark.slow

ENGINE = shutil.which("podman") or shutil.which("docker")
BASE_IMAGE_TOOL = REPO.parent / "shared" / "tools" / "local-base-image"
IMAGE = "localhost/ser:test"


def _engine_works() -> str | None:
    if ENGINE is None:
        return "no container engine (podman or docker) on this machine"
    probe = subprocess.run([ENGINE, "info"], capture_output=True, text=True, env=_engine_env())
    return None if probe.returncode == 0 else f"{ENGINE} info failed: {probe.stderr.strip()[:200]}"


def _engine_env() -> dict:
    env = dict(os.environ)
    conf = Path("/var/tmp/local-base-image/containers.conf")
    if ENGINE and ENGINE.endswith("podman") and conf.exists():
        env["CONTAINERS_CONF"] = str(conf)
    return env


def _bentoml(*args: str, env: dict, timeout: float = 1800, cwd: Path = REPO) -> str:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, (
        f"bentoml {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory, trained_store):
    """(bento tag, env) for a bento of the synthetic test model, containerised as IMAGE."""
    reason = _engine_works()
    if reason:
        pytest.skip(reason)
    env = {**_engine_env(), "BENTOML_HOME": str(trained_store)}
    if ENGINE.endswith("podman"):
        if not BASE_IMAGE_TOOL.exists():
            pytest.skip(f"{BASE_IMAGE_TOOL} not found: no registry is reachable to pull the base image")
        subprocess.run([str(BASE_IMAGE_TOOL)], check=True, capture_output=True, timeout=900)
        env["CONTAINERS_CONF"] = "/var/tmp/local-base-image/containers.conf"
    tag = _bentoml("build", "--output", "tag", env=env).strip().splitlines()[-1].removeprefix("__tag__:")
    started = time.time()
    backend = ["--backend", "podman"] if ENGINE.endswith("podman") else []
    # From /: bentoml 1.4.39 refuses the bento's dockerfile_template from any directory that is not
    # above its temporary copy of the bento ("Accessing file outside of current working directory").
    previous = _image_id(IMAGE, env)
    _bentoml("containerize", tag, *backend, "-t", IMAGE, env=env, cwd=Path("/"))
    if previous and previous != _image_id(IMAGE, env):
        # The last run's image, now untagged: without this every `make test` left one behind.
        subprocess.run([ENGINE, "rmi", previous], capture_output=True, env=env)
    size, base = (_image_size(image, env) for image in (IMAGE, BASE_IMAGE))
    added = f", {(size - base) / 1e6:.0f} MB on top of {BASE_IMAGE}" if size and base else ""
    print(f"\nimage {IMAGE}: {size / 1e6:.0f} MB{added}; built in {time.time() - started:.0f} s")
    return tag, env


def _image_id(image: str, env: dict) -> str:
    return _inspect(image, "{{.Id}}", env)


def _image_size(image: str, env: dict) -> int:
    size = _inspect(image, "{{.Size}}", env)
    return int(size) if size.isdigit() else 0


def _inspect(image: str, field: str, env: dict) -> str:
    """One field of ``image`` (`podman image inspect --format`), "" when there is no such image."""
    cmd = [ENGINE, "image", "inspect", image, "--format", field]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return out.stdout.strip() if out.returncode == 0 else ""


def _clips() -> list[tuple[str, bytes]]:
    tess = Path(os.environ.get("SER_TESS_DIR", REPO.parent / "shared" / "data" / "tess"))
    files = sorted(tess.rglob("*.flac"))[::400][:6]
    if files:
        return [(f.name, f.read_bytes()) for f in files]
    return [(f"tone{i}.wav", encode(tone(1.5, f0=120 + 40 * i))) for i in range(6)]


def _container_workers(name: str, env: dict) -> list[int]:
    """PIDs of the processes PID 1 started in the container (its server workers)."""
    code = (
        "import pathlib; print(' '.join(p.parent.name for p in pathlib.Path('/proc').glob('[0-9]*/stat') "
        "if p.read_text().rsplit(')', 1)[1].split()[1] == '1'))"
    )
    cmd = [ENGINE, "exec", name, "python", "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return sorted(int(p) for p in out.stdout.split())


def _predict(url: str, clip: tuple[str, bytes]) -> dict:
    r = requests.post(f"{url}/predict", files={"audio": clip}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_container_matches_bentoml_serve_and_behaves(built, tmp_path):
    tag, env = built
    clips = _clips()

    # Reference answers from `bentoml serve` of the same bento.
    port = free_port()
    with open(tmp_path / "serve.log", "w") as log:
        ref = subprocess.Popen(
            [str(Path(sys.executable).parent / "bentoml"), "serve", tag, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", ref, tmp_path / "serve.log")
            expected = [_predict(f"http://127.0.0.1:{port}", c) for c in clips]
        finally:
            os.killpg(ref.pid, signal.SIGTERM)
            ref.wait(timeout=30)

    # The container, on a port given through $PORT as serverless platforms do.
    host_port, inner = free_port(), 8080
    name = f"ser-test-{os.getpid()}"
    started = time.time()
    subprocess.run(
        [
            ENGINE,
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "-e",
            f"PORT={inner}",
            "-p",
            f"127.0.0.1:{host_port}:{inner}",
            IMAGE,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    url = f"http://127.0.0.1:{host_port}"
    try:
        first = None
        while time.time() - started < 180:
            try:
                first = requests.post(f"{url}/predict", files={"audio": clips[0]}, timeout=30)
                if first.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        assert first is not None and first.status_code == 200, "container never answered /predict"
        print(f"\ncontainer start → first answered prediction: {time.time() - started:.1f} s")
        rss, procs = container_rss(ENGINE, env, name)
        print(f"container RSS {rss:.0f} MB over {len(procs)} processes")

        # The slim image serves the LiteRT export: no TensorFlow, librosa or Gradio in it.
        heavy = subprocess.run(
            [
                ENGINE,
                "exec",
                name,
                "python",
                "-c",
                "import importlib.util as u; print([m for m in ('tensorflow', 'keras', 'librosa', 'gradio') "
                "if u.find_spec(m)])",
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        assert heavy.returncode == 0 and heavy.stdout.strip() == "[]", heavy.stdout + heavy.stderr

        got = [_predict(url, c) for c in clips]
        for e, g in zip(expected, got, strict=True):
            assert g["emotion"] == e["emotion"]
            for label, p in e["probabilities"].items():
                assert abs(g["probabilities"][label] - p) < 1e-5

        # The image's command (ser/prefork.py): gunicorn's master is PID 1 and forks the workers;
        # one killed is forked again and the container keeps answering.
        before = _container_workers(name, env)
        assert len(before) == 2, before
        logs = subprocess.run([ENGINE, "logs", name], capture_output=True, text=True, env=env)
        for index in (1, 2):  # Each worker's lines carry its name and index, as under `bentoml serve`.
            assert f"[entry_service:ser:{index}] Service ser initialized" in logs.stdout + logs.stderr
        kill = f"import os, signal; os.kill({before[0]}, signal.SIGKILL)"
        subprocess.run([ENGINE, "exec", name, "python", "-c", kill], env=env, check=True)
        deadline, after = time.time() + 30, []
        while time.time() < deadline:
            after = _container_workers(name, env)
            if len(after) == 2 and before[0] not in after:
                break
            time.sleep(0.2)
        assert len(after) == 2 and before[0] not in after, (before, after)
        assert [_predict(url, c)["emotion"] for c in clips] == [e["emotion"] for e in expected]

        uid = subprocess.run([ENGINE, "exec", name, "id", "-u"], capture_output=True, text=True, env=env)
        assert uid.stdout.strip() not in ("", "0"), f"container runs as uid {uid.stdout.strip()!r}"

        # SIGTERM with requests in flight: they are answered and the container exits within 5 s.
        # 60 s timelines (~0.25 s each here): 8 of them keep the 2 workers busy for ~1 s.
        long_clip = ("long.wav", encode(tone(60.0)))
        connections = send_whole_requests(f"{url}/timeline", {"audio": long_clip}, 8)
        answered_before = answered(connections)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(response_status, conn) for conn in connections]
            stop_started = time.time()
            subprocess.run(
                [ENGINE, "kill", "--signal", "TERM", name], env=env, check=True, capture_output=True
            )
            subprocess.run([ENGINE, "wait", name], env=env, capture_output=True, timeout=30)
            stopped_in = time.time() - stop_started
            statuses = [f.result() for f in futures]
        print(f"container stopped {stopped_in:.1f} s after SIGTERM; in-flight statuses {statuses}")
        assert answered_before < 8, "every request was answered before SIGTERM: nothing was in flight"
        assert stopped_in < 5.0
        assert all(s == 200 for s in statuses), statuses
    finally:
        subprocess.run([ENGINE, "rm", "-f", "-t", "1", name], env=env, capture_output=True)
    (tmp_path / "container.json").write_text(json.dumps({"expected": expected, "got": got}))
