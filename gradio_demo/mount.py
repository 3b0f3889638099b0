"""Mount the demo on the BentoML service: the one place the service imports Gradio.

    @mount_demo("/ui")
    @bentoml.service(...)
    class SER: ...

``SER_DEMO`` decides: ``auto`` (default) mounts the demo when Gradio is installed, ``0`` never
mounts it (Gradio's ~4 s import then stays off the start-up path), ``1`` requires it. Without
Gradio or matplotlib the service is left as it is (a log line says so, found without importing
anything), so the slim image (requirements/serve.txt has neither) serves the API and starts fast.

Gradio keeps its sessions and queue in the process that serves them: behind several workers a
page's requests land on workers that never saw its session ("session not found"). Mounting the
demo therefore runs the service in one worker; SER_WORKERS above 1 leaves the demo out
(``auto``) or refuses to start (``1``).
"""

from __future__ import annotations

import importlib.util
import logging
import os

from bentoml.exceptions import MissingDependencyException

logger = logging.getLogger(__name__)


def prepare_for_mount(demo) -> None:
    """Give the Blocks what `gr.mount_gradio_app`/`launch` set and BentoML's mount does not.

    bentoml 1.4.39 + gradio 6.31: `bentoml.gradio.mount_gradio_app` builds the app straight from
    the Blocks, but Gradio 6 takes theme/css/js/head at launch or mount time; without them GET
    /ui/ is a 500 (`'NoneType' object has no attribute 'get'` at `config.get('body_css')`).
    """
    import gradio as gr

    from gradio_demo.app import launch_kwargs

    options = launch_kwargs()
    demo.theme = gr.utils.get_theme(options.get("theme"))
    demo.css = options.get("css") or ""
    demo.js = options.get("js") or ""
    demo.head = options.get("head") or ""
    demo.head_paths = []
    demo.css_paths = []
    demo._set_html_css_theme_variables()
    demo.config = demo.get_config_file()


def mount_demo(path: str = "/ui"):
    """Class decorator: mount the demo (in-process backend) on the service at ``path``."""

    def decorator(service):
        wanted = os.environ.get("SER_DEMO", "auto").strip().lower()
        if wanted in ("0", "false", "no", "off"):
            logger.info("demo not mounted at %s: SER_DEMO=%s", path, wanted)
            return service
        required = wanted in ("1", "true", "yes", "on")
        workers = os.environ.get("SER_WORKERS", "").strip()
        if workers not in ("", "1"):
            reason = f"Gradio keeps its sessions in one process and SER_WORKERS={workers} runs several"
            if required:
                raise ValueError(f"SER_DEMO={wanted} but the demo cannot be mounted at {path}: {reason}")
            logger.info("demo not mounted at %s: %s (SER_WORKERS=1 mounts it)", path, reason)
            return service
        missing = [m for m in ("gradio", "matplotlib") if importlib.util.find_spec(m) is None]
        if missing and not required:
            logger.info("demo not mounted at %s: %s not installed (pip install 'ser[demo]')", path, missing)
            return service
        try:
            import bentoml.gradio  # Imports gradio.

            from gradio_demo.app import build_demo  # Imports matplotlib too.
            from gradio_demo.backends import InProcessBackend
        except (ImportError, MissingDependencyException) as e:
            if required:
                raise ImportError(f"SER_DEMO={wanted} but the demo cannot be mounted at {path}: {e}") from e
            logger.warning("demo not mounted at %s: %s (pip install 'ser[demo]')", path, e)
            return service

        from ser.settings import Settings

        demo = build_demo(InProcessBackend())
        service = bentoml.gradio.mount_gradio_app(demo, path=path)(service)
        service.config["workers"] = 1  # The demo's sessions live in one process (see above).
        # BentoML lifts Gradio's upload limit; refuse what the service would refuse before storing it.
        demo.max_file_size = Settings.from_env().max_upload_bytes
        # SER_DEMO_MOUNT_AS_IS=1 skips the fix, to check whether a newer bentoml still needs it.
        if os.environ.get("SER_DEMO_MOUNT_AS_IS") != "1":
            prepare_for_mount(demo)  # Last: it computes the page config from the settings above.
        return service

    return decorator
