"""The container image's cold start for the benchmark: `podman run` (or docker) → first answered /predict.

The image is not built here (that takes minutes): `make image` or `make test-container` builds one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from loadtests import bench_servers as srv
from loadtests.clips import multipart

CONTAINERS_CONF = Path("/var/tmp/local-base-image/containers.conf")  # From ../shared/tools/local-base-image.


def container_cold_start(image: str, bodies: Path) -> dict:
    """{"image", "size_gb", "cold_start_s", "rss"} or {"image", "skipped": reason}."""
    engine = shutil.which("podman") or shutil.which("docker")
    if engine is None:
        return {"image": image, "skipped": "no container engine (podman or docker) on this machine"}
    env = dict(os.environ)
    if engine.endswith("podman") and CONTAINERS_CONF.exists():
        env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)

    def run(*args: str, check: bool = True, timeout: float = 60) -> str:
        out = subprocess.run([engine, *args], env=env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise RuntimeError(f"{engine} {' '.join(args)}: {out.stderr.strip()[:300]}")
        return out.stdout.strip() if out.returncode == 0 else ""

    size = run("image", "inspect", image, "--format", "{{.Size}}", check=False)
    if not size:
        return {
            "image": image,
            "skipped": f"image {image} not found (building it takes minutes: `make image`)",
        }
    first = sorted(bodies.iterdir())[0]
    body = multipart("audio", [(first.name, first.read_bytes())])
    port, name = srv.free_port(), f"ser-bench-{os.getpid()}"
    started = time.perf_counter()
    try:
        run("run", "-d", "--rm", "--name", name, "-e", "PORT=3000", "-p", f"127.0.0.1:{port}:3000", image)
        url = f"http://127.0.0.1:{port}/predict"
        cold = srv.first_prediction(url, body, lambda: True, timeout=240, since=started)
        pid = run("inspect", name, "--format", "{{.State.Pid}}", check=False)
        rss = srv.rss_tree(int(pid)) if pid.isdigit() and int(pid) > 0 else []
        return {
            "image": image,
            "engine": Path(engine).name,
            "size_gb": int(size) / 1e9,
            "cold_start_s": cold,
            "rss": rss,
        }
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        return {"image": image, "skipped": f"container did not answer: {e}"}
    finally:
        run("rm", "-f", "-t", "1", name, check=False)
