"""The HTTP baseline: the same stack as ours answering a fixed AdmissionReview, with no work per request.

The response is built once at import from a real `decide` on the typical Pod, so it carries a
patch of exactly our size; the request body is read (as ours must) but never parsed.
"""

from __future__ import annotations

import json

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.pod import EXAMPLES, NAMESPACE, review_body, typical_pod
from webhook.core import bounds
from webhook.core.decision import decide
from webhook.core.review import answer, parse_review
from webhook.core.settings import Settings
from webhook.injector.sources.files import FileSource

DESCRIPTION = (
    "starlette app on the same uvicorn stack (uvloop, httptools, same TLS files, 1 worker, no access log) "
    "that reads the body and returns a fixed AdmissionReview built once from a real decide (same patch size)"
)


def _fixed_response() -> bytes:
    outcome = decide(typical_pod(), NAMESPACE, FileSource([EXAMPLES]).load(), Settings())
    return json.dumps(answer(parse_review(review_body()), outcome), separators=(",", ":")).encode()


FIXED = _fixed_response()
READY = b'{"status":"ready"}'


async def mutate(request: Request) -> Response:
    await request.body()
    return Response(FIXED, media_type="application/json")


async def mutate_parsed(request: Request) -> Response:
    """The floor: what any webhook that reads the Pod safely must do, and nothing more."""
    body = await request.body()
    if bounds.problem(body) is None:
        orjson.loads(body)
    return Response(FIXED, media_type="application/json")


async def readyz(_: Request) -> Response:
    return Response(READY, media_type="application/json")


app = Starlette(routes=[Route("/mutate", mutate, methods=["POST"]), Route("/readyz", readyz, methods=["GET"])])
PARSED_DESCRIPTION = "the baseline app that also runs the bounds scan and orjson.loads on the body before answering"
parsing_app = Starlette(
    routes=[Route("/mutate", mutate_parsed, methods=["POST"]), Route("/readyz", readyz, methods=["GET"])]
)
