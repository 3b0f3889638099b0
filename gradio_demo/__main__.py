"""The demo standalone, against a running service:

python -m gradio_demo --url http://127.0.0.1:3000 [--port 7860] [--host 127.0.0.1]
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gradio_demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", default="http://127.0.0.1:3000", help="the ser service (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=7860, help="port of the demo (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: %(default)s)")
    args = parser.parse_args(argv)

    from gradio_demo.app import build_demo, launch_kwargs
    from gradio_demo.backends import RemoteBackend

    demo = build_demo(RemoteBackend(args.url))
    print(f"demo of {args.url} on http://{args.host}:{args.port}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, **launch_kwargs())


if __name__ == "__main__":
    main()
