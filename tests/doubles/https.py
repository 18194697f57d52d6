"""A small threaded HTTPS server on loopback that hands each request to one function."""

from __future__ import annotations

import contextlib
import json
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # No answer at all: hold the connection open until this is set (or WITHHOLD_MAX passes), then drop it.
    withheld: threading.Event | None = None


WITHHOLD_MAX = 60.0


Handler = Callable[[Request], Response]


def _handler_class(handle: Handler) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
            headers = {key.lower(): value for key, value in self.headers.items()}
            request = Request(self.command, parts.path, query, headers, self.rfile.read(length))
            try:
                response = handle(request)
            except Exception as error:  # a bug in the double: say so loudly rather than hang the client
                response = Response(500, {"error": {"code": "DoubleBug", "message": repr(error)}})
            if response.withheld is not None:
                response.withheld.wait(WITHHOLD_MAX)
                self.close_connection = True  # the client sees the connection close with no answer
                return
            payload = b"" if response.body is None else json.dumps(response.body).encode()
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            del args

    return _Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a withheld answer must not hold up the shutdown

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a killed controller, say) is no error of the double's."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve_https(handle: Handler, certs: Path) -> Iterator[str]:
    """Serve on 127.0.0.1 with certs/tls.crt (signed by certs/ca.crt); yields the base URL."""
    server = _Server(("127.0.0.1", 0), _handler_class(handle))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "tls.crt", certs / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="double", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
