"""`python -m bench.baseline_server`: serve the baseline app with the settings `webhook.injector.server` uses.

A runner of our own rather than the uvicorn CLI, so every option (loop, http, TLS, lifespan, logs,
server header) is spelled the same way as in ours and a difference in figures is not a config one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

KEEP_ALIVE_SECONDS = 120  # webhook.injector.server's (not imported: the baseline loads none of our server)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-file", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--parse", action="store_true", help="also scan and parse the body (the floor)")
    parser.add_argument("--fixed", type=Path, help="serve each PATCH.json in this directory at POST /PATCH")
    args = parser.parse_args(argv)
    if args.fixed:
        from bench.fixed_app import fixed_app

        app: object = fixed_app(args.fixed)
    else:
        app = "bench.baseline_app:parsing_app" if args.parse else "bench.baseline_app:app"
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=args.host,
        port=args.port,
        ssl_certfile=args.cert_file,
        ssl_keyfile=args.key_file,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        workers=1,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
