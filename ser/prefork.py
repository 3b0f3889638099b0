"""Serve a bento from one process that imports it once and forks its workers (the image's command).

    python -m ser.prefork /home/bentoml/bento     # what the container runs (deploy/Dockerfile.j2)
    python -m ser.prefork .                       # this checkout, as `bentoml serve service:SER`

Why not `bentoml serve` in the container: its arbiter imports the service to read its settings,
then starts each worker as a new Python process that imports it all again. Measured in the image
(2 workers, 2 cores): 2.3 s from container start to the arbiter spawning workers, 1.6–1.8 s for
each worker to import the service, 0.6 s to load and warm the model, 4.7 s to the first answered
/predict. Here one process imports the service and builds its ASGI app, then gunicorn forks the
workers from it (`preload_app`): they share that import, and each only loads its model. Each worker
is what BentoML's own worker runs (the app of `Service.to_asgi`, served by uvicorn with uvloop and
httptools), so routes, batching, metrics and errors are the same; gunicorn supervises them:
SIGTERM drains in-flight requests before exiting, a dead worker is forked again at once.

Settings that `bentoml serve` would give its workers are kept: the port (`$PORT`, else
`$BENTOML_PORT`, else 3000), host, backlog, keep-alive, worker count (the service's `workers`,
through BentoML's allocator), the service's `envs` and the Prometheus multiprocess directory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import ClassVar

from gunicorn.app.base import BaseApplication
from uvicorn_worker import UvicornWorker

from ser.balance import BalancedHttpToolsProtocol, ConnectionTable
from ser.memory import freeze_startup_objects
from ser.settings import parse_choice

logger = logging.getLogger("ser.prefork")
MODULE = "ser.prefork"  # Not __name__, which is "__main__" under `python -m`.
REEXEC_MARK = "SER_PREFORK_REEXEC"  # Set on the one re-exec that applies the service's envs.
BALANCES = ("on", "off")  # SER_CONNECTION_BALANCE (ser/balance.py).
# The shared table lives on the protocol class (ser.balance), not here: under `python -m` this file
# is `__main__`, while gunicorn imports the worker class from a second copy named ser.prefork.


class Worker(UvicornWorker):
    """uvicorn as BentoML's worker runs it: C loop and parser, no `server` header — the parser's
    protocol keeping the workers' connections even (ser/balance.py) when SER_CONNECTION_BALANCE
    is on (the default)."""

    CONFIG_KWARGS: ClassVar[dict] = {"loop": "uvloop", "http": "httptools", "server_header": False}

    def __init__(self, *args, **kwargs) -> None:
        if BalancedHttpToolsProtocol.table is not None:
            self.CONFIG_KWARGS = {**self.CONFIG_KWARGS, "http": BalancedHttpToolsProtocol}
        super().__init__(*args, **kwargs)


class Prefork(BaseApplication):
    """gunicorn serving an ASGI app that was built before it forks (so workers share the import)."""

    def __init__(self, app, options: dict) -> None:
        self.app, self.options = app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.app


def pre_fork(server, worker) -> None:
    """Give each worker the lowest free index from 1, as circus numbers BentoML's workers."""
    taken = {getattr(w, "ser_index", 0) for w in server.WORKERS.values()}
    worker.ser_index = next(i for i in range(1, len(taken) + 2) if i not in taken)


def post_fork(server, worker) -> None:
    from bentoml._internal.context import server_context
    from bentoml._internal.log import _component_name

    server_context.worker_index = worker.ser_index  # Metrics' worker_index and the log prefix.
    if (table := BalancedHttpToolsProtocol.table) is not None:
        BalancedHttpToolsProtocol.slot = worker.ser_index - 1
        table.publish(worker.ser_index - 1, 0)
    # BentoML caches the log prefix on first use, and loading a bento directory logs before the
    # context is set: without this every worker logs as "[]" (BentoML's worker sets it first).
    _component_name.cache_clear()


def child_exit(server, worker) -> None:
    """Drop a dead worker's live-gauge files, as prometheus_client asks of multiprocess servers."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    if (table := BalancedHttpToolsProtocol.table) is not None:
        table.publish(worker.ser_index - 1, 0)  # Its connections died with it.


def load_service(bento: str):
    """The service from a bento directory, a bento tag or `module:Service`, as BentoML's worker loads it."""
    from _bentoml_impl.loader import load
    from bentoml._internal.context import server_context
    from bentoml._internal.log import configure_server_logging
    from bentoml._internal.utils.uri import join_paths
    from bentoml.serving import ensure_prometheus_dir

    # As `bentoml serve`: a fresh multiprocess directory, which every forked worker inherits.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = ensure_prometheus_dir()
    configure_server_logging()
    svc = load(bento, standalone_load=True)
    server_context.service_type = "entry_service"
    server_context.service_name = svc.name
    server_context.service_routes = [join_paths(svc.path_prefix, api.route) for api in svc.apis.values()]
    server_context.bento_name = svc.bento.tag.name if svc.bento else svc.name
    server_context.bento_version = (svc.bento.tag.version if svc.bento else None) or "not available"
    return svc


def missing_envs(svc) -> dict[str, str]:
    """The service's runtime `envs` not yet in the environment (bentoml serve sets them per worker)."""
    return {
        e.name: e.value
        for e in svc.envs
        if e.stage != "build" and e.value is not None and e.name not in os.environ
    }


def options(svc, host: str, port: int, workers: int | None) -> dict:
    from _bentoml_impl.server.allocator import ResourceAllocator
    from bentoml._internal.container import BentoMLContainer

    n, worker_env = ResourceAllocator().get_worker_env(svc)
    os.environ.update(worker_env)
    timeout = int((svc.config.get("traffic") or {}).get("timeout") or 60)
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers or n,
        "worker_class": f"{MODULE}.Worker",
        "preload_app": True,
        "backlog": BentoMLContainer.api_server_config.backlog.get(),
        "keepalive": 5,  # BentoML's worker default.
        "graceful_timeout": timeout,  # In-flight requests end within their own timeout.
        "timeout": max(30, timeout),  # A worker whose event loop stops answering for this long is replaced.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        "accesslog": None,  # BentoML's app logs each request itself.
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": svc.name,
        "control_socket_disable": True,  # No run-time control; nothing written to $HOME.
        "pre_fork": pre_fork,
        "post_fork": post_fork,
        "child_exit": child_exit,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m ser.prefork", description=__doc__.split("\n")[0])
    p.add_argument("bento", nargs="?", default=".", help="bento directory or tag, or module:Service")
    p.add_argument("--host", default=os.environ.get("BENTOML_HOST", "0.0.0.0"))
    port = os.environ.get("PORT") or os.environ.get("BENTOML_PORT") or "3000"
    p.add_argument("--port", type=int, default=int(port))
    p.add_argument("--workers", type=int, default=None, help="default: the service's own `workers`")
    args = p.parse_args(argv)

    svc = load_service(args.bento)
    if missing := missing_envs(svc):
        # Settings such as OPENBLAS_NUM_THREADS act when a library loads and MALLOC_ARENA_MAX when
        # the process starts, and the service reads its own at import: start again with them set.
        # The image declares them all, so this happens only outside it.
        if os.environ.get(REEXEC_MARK):
            sys.exit(f"ser.prefork: could not set {sorted(missing)}")
        logger.info("Restarting with the service's envs %s", json.dumps(missing))
        env = {**os.environ, **missing, REEXEC_MARK: "1"}
        rest = argv if argv is not None else sys.argv[1:]
        os.execve(sys.executable, [sys.executable, "-m", MODULE, *rest], env)
    app = svc.to_asgi(is_main=True)
    opts = options(svc, args.host, args.port, args.workers)
    if parse_choice("SER_CONNECTION_BALANCE", "on", BALANCES) == "on" and opts["workers"] > 1:
        BalancedHttpToolsProtocol.table = ConnectionTable(opts["workers"])  # Before the fork: shared.
    freeze_startup_objects()  # The shared import: not walked, nor its pages copied, by workers' GC.
    Prefork(app, opts).run()


if __name__ == "__main__":
    main()
