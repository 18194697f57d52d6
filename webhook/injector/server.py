"""HTTPS admission endpoint: starlette routes on uvicorn (httptools, uvloop), TLS 1.2+.

`POST /mutate` answers AdmissionReviews, `GET /healthz` says the process is alive, `GET /readyz`
says it has its configuration and is not draining. Bad input gets 400 or 413, never 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from webhook.core.review import MAX_BODY_BYTES, BadReview, parse_review
from webhook.injector.admission import Admission
from webhook.injector.tls import ReloadingTLS

log = logging.getLogger(__name__)
_DIGITS = re.compile(r"[0-9]{1,19}")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


@dataclass
class Lifecycle:
    """Readiness as the server sees it: false until configured, and false again while draining."""

    admission: Admission
    draining: bool = False
    background: list[Callable[[], Coroutine[None, None, None]]] = field(default_factory=list)
    shutdown: list[Callable[[], None]] = field(default_factory=list)  # after the last request, in order

    @property
    def ready(self) -> bool:
        return self.admission.source.ready and not self.draining


async def read_body(request: Request) -> bytes | None:
    """The body, or None once it passes the limit (checked as it streams, not after)."""
    declared = request.headers.get("content-length", "")
    if _DIGITS.fullmatch(declared) and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)  # one chunk (the usual case) is returned as it is, not copied


def create_app(lifecycle: Lifecycle) -> Starlette:
    admission = lifecycle.admission

    async def mutate(request: Request) -> Response:
        body = await read_body(request)
        if body is None:
            return _json({"error": f"request body is larger than {MAX_BODY_BYTES} bytes"}, 413)
        try:
            review = parse_review(body)
        except BadReview as error:
            return _json({"error": str(error)}, 400)
        except Exception:  # a bug of ours: say so in the log, and still no 500 for what a client sent
            log.exception("could not read an AdmissionReview of %d bytes", len(body))
            return _json({"error": "could not read this AdmissionReview (a webhook bug: see its log)"}, 400)
        return _json(await admission.review(review))

    async def healthz(_: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if lifecycle.ready:
            return _json({"status": "ready"})
        reason = "draining" if lifecycle.draining else "configuration not loaded yet"
        return _json({"status": "not ready", "reason": reason}, 503)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await admission.source.start()
        # What exists now (the imported libraries, the first configuration) lives as long as the process:
        # out of the cyclic collector's sight, its full collections stop walking ~60,000 objects, which
        # had held the GIL for up to 180 ms in a re-list of 10,000 identities while requests waited.
        gc.freeze()
        tasks = [asyncio.create_task(job()) for job in lifecycle.background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await admission.source.stop()
            for step in lifecycle.shutdown:
                step()
            log.info("stopped after in-flight requests finished")

    return Starlette(
        routes=[
            Route("/mutate", mutate, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


# Longer than the idle timeout of the API server's webhook client (Go's default, 90 s), so a connection
# left idle between sparse Pod creations is still there for the next call (no new TCP and TLS
# handshake), and an idle connection is closed by the client, never under a request on its way.
KEEP_ALIVE_SECONDS = 120


class _DrainingServer(uvicorn.Server):
    """On the first SIGTERM: not ready at once, keep serving `drain_seconds`, then stop gracefully."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_seconds: float) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle
        self.drain_seconds = drain_seconds

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and not self.lifecycle.draining and self.drain_seconds > 0:
            self.lifecycle.draining = True
            log.info("SIGTERM: readiness off, draining for %.1fs before shutdown", self.drain_seconds)
            asyncio.get_running_loop().call_later(self.drain_seconds, super().handle_exit, sig, frame)
            return
        self.lifecycle.draining = True
        super().handle_exit(sig, frame)


def serve(
    lifecycle: Lifecycle,
    tls: ReloadingTLS,
    host: str,
    port: int,
    drain_seconds: float = 5.0,
    graceful_seconds: float = 20.0,
) -> None:
    lifecycle.background.append(tls.run)
    config = uvicorn.Config(
        create_app(lifecycle),
        host=host,
        port=port,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=int(graceful_seconds),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        server_header=False,
    )
    config.load()
    config.ssl = tls.context
    _DrainingServer(config, lifecycle, drain_seconds).run()
