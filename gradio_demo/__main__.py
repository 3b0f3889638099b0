"""The demo standalone, against a running service:

python -m gradio_demo --url http://127.0.0.1:3000 [--port 7860] [--host 127.0.0.1] [--api-key KEY]

A service started with SER_API_KEY needs the key: --api-key, or SER_API_KEY / SER_API_KEY_FILE in
this process's environment (better: a command line is visible to other users in `ps`).
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
    parser.add_argument(
        "--api-key",
        default=None,
        help="the service's API key (default: SER_API_KEY or the file SER_API_KEY_FILE names)",
    )
    args = parser.parse_args(argv)

    from gradio_demo.app import build_demo, launch_kwargs
    from gradio_demo.backends import RemoteBackend
    from ser.security import read_api_key

    demo = build_demo(RemoteBackend(args.url, api_key=args.api_key or read_api_key()))
    print(f"demo of {args.url} on http://{args.host}:{args.port}", flush=True)
    demo.launch(server_name=args.host, server_port=args.port, show_error=True, **launch_kwargs())


if __name__ == "__main__":
    main()
