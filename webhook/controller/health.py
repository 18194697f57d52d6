"""The controller's plain-HTTP port: `/healthz`, `/readyz` and Prometheus `/metrics`.

The controller is threads, not an event loop, so this is the standard library's threaded server
(as prometheus_client's own exporter is), not starlette. Probes answer from callables that read
in-memory state only: no probe ever waits for the API server or Graph.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

# (healthy, why): `why` says what is wrong, or what the replica is doing when all is well.
Check = Callable[[], tuple[bool, str]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class HealthServer:
    def __init__(self, host: str, port: int, alive: Check, ready: Check, registry: CollectorRegistry) -> None:
        self._server = _Server((host, port), _handler(alive, ready, registry))
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(alive: Check, ready: Check, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                check, yes, no = (alive, "ok", "unhealthy") if path == "/healthz" else (ready, "ready", "not ready")
                good, why = check()
                body = {"status": yes, "detail": why} if good else {"status": no, "reason": why}
                self._send(200 if good else 503, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b'{"error": "not found: try /healthz, /readyz or /metrics"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            del args  # probes every few seconds are not worth a log line

    return _Handler
