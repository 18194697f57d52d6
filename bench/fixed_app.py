"""A webhook that answers every AdmissionReview with a patch held in memory: no work per request.

`make bench-apiserver` registers it beside ours, so the API server's own cost of one webhook call
(encoding the review, TLS, applying the patch, re-running its built-in plugins) is measured apart
from ours. Each `NAME.json` in the directory (a JSON Patch) is served at `POST /NAME`; the only
thing read from a request is its `uid`, which the API server checks in the reply.
"""

from __future__ import annotations

import binascii
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _handler(patch: bytes) -> Callable[[Request], Awaitable[Response]]:
    encoded = binascii.b2a_base64(patch, newline=False)
    head = b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":'
    tail = b',"allowed":true,"patchType":"JSONPatch","patch":"' + encoded + b'"}}'

    async def mutate(request: Request) -> Response:
        uid = orjson.loads(await request.body())["request"]["uid"]
        return Response(head + orjson.dumps(uid) + tail, media_type="application/json")

    return mutate


async def readyz(_: Request) -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")


def fixed_app(directory: Path) -> Starlette:
    routes = [
        Route(f"/{path.stem}", _handler(path.read_bytes()), methods=["POST"]) for path in directory.glob("*.json")
    ]
    return Starlette(routes=[*routes, Route("/readyz", readyz, methods=["GET"])])
