"""(c) Where one request's time goes: each stage of the served path, timed alone on the typical request.

Every stage is the very function the server calls, on the very value it would have at that point
(the body wrk posts, the Pod parsed from it, the outcome `decide` gives), so the table is a budget
measured, not guessed; the stages run in the core's interleaved batches. HTTP and TLS are not
here: they are what the fixed-patch baseline server costs in (b).

`whole` is the served path end to end without the socket: read the body from an ASGI receive,
parse, `Admission.review` (decide, answer, the log line, the metrics, Events), encode, build the
response. Coroutines are driven by hand: nothing in them waits, so no event loop is needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TextIO, TypeVar

import orjson
from starlette.requests import Request as HttpRequest
from starlette.responses import Response

from bench.case import Case
from bench.pod import EXAMPLES, NAMESPACE, review_body
from webhook.common.models import ConfigObject, ObjectRef
from webhook.core import bounds
from webhook.core.budget import copied, over_limit, seccomp_synced
from webhook.core.decision import Inject, decide
from webhook.core.index import ConfigIndex
from webhook.core.pod import DEFAULT_CONTAINER, STATUS
from webhook.core.rendered import Rendered
from webhook.core.review import answer, parse_review, read_review
from webhook.core.settings import Settings
from webhook.core.shape import shape_problem
from webhook.injector.admission import Admission, Admitted, Observer
from webhook.injector.admission_log import AdmissionLog
from webhook.injector.events import EventRecorder
from webhook.injector.metrics import Metrics
from webhook.injector.server import read_body
from webhook.injector.sources.files import FileSource

JSON = "application/json"


class LoadedSource:
    """A configuration source that is simply loaded: what `Admission` reads on the request path."""

    def __init__(self, index: ConfigIndex) -> None:
        self._index = index

    @property
    def index(self) -> ConfigIndex:
        return self._index

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def lookup(self, ref: ObjectRef) -> ConfigObject | None:  # noqa: ARG002 (nothing to look up)
        return None


T = TypeVar("T")


def run_now(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("the coroutine waited: it cannot be timed without an event loop")


def http_request(body: bytes) -> HttpRequest:
    """A starlette request whose body arrives in one ASGI message, as uvicorn gives a small body."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {"type": "http", "method": "POST", "path": "/mutate", "headers": headers, "query_string": b""}
    return HttpRequest(scope, receive)


def served_admission(index: ConfigIndex, settings: Settings, log_stream: TextIO) -> Admission:
    """As `entra-webhook serve` wires it: the admission log, metrics and (cluster only) Events."""
    logging.getLogger("webhook.admissions").setLevel(logging.INFO)  # as `serve` configures it
    metrics = Metrics(lambda: index)
    recorder = EventRecorder(lambda _namespace, _event: None, on_result=metrics.event_result)
    observers: list[Observer] = [AdmissionLog(log_stream), metrics.observe, recorder.observe]
    return Admission(LoadedSource(index), settings, None, observers)


def null_stream() -> TextIO:
    """Where the bench's admission lines go: a real file, line-buffered like stderr, so a line costs
    its write call as in the server."""
    return open(os.devnull, "w", buffering=1, encoding="utf-8")


def build_stages(log_stream: TextIO | None = None) -> list[Case]:
    """The stages, after checking that the whole path gives the answer its stages give."""
    stream = log_stream or null_stream()
    index, settings, rendered = FileSource([EXAMPLES]).load(), Settings(), Rendered()
    body = review_body()
    parsed = orjson.loads(body)
    request = read_review(parsed)
    pod = request.object
    assert pod is not None
    outcome = decide(pod, NAMESPACE, index, settings, rendered=rendered)
    if not isinstance(outcome, Inject):
        raise RuntimeError(f"the typical Pod was not injected: {outcome}")
    reply = answer(request, outcome)
    encoded = orjson.dumps(reply)
    admission = served_admission(index, settings, stream)
    admitted = Admitted(request, outcome, "injected", 40)
    spec, present = pod["spec"], pod["metadata"]["annotations"]
    added = {STATUS: '{"blueprint":"sales"}', DEFAULT_CONTAINER: "agent"}
    sidecar = copied("entra-sidecar", {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}})
    log, metrics, events = admission.observers

    def whole() -> object:
        got = run_now(read_body(http_request(body)))
        assert got is not None
        return Response(orjson.dumps(run_now(admission.review(parse_review(got)))), media_type=JSON)

    answered = whole()
    assert isinstance(answered, Response)
    if answered.body != encoded:
        raise RuntimeError("the whole path answered differently from its stages")

    def read() -> object:
        return run_now(read_body(http_request(body)))

    def budget() -> object:
        return over_limit(present, added, seccomp_synced(spec, present, None, spec["containers"], ours=sidecar))

    return [
        Case("read", "read body", "server.read_body from an ASGI receive (one message)", read),
        Case(
            "bounds",
            "bounds scan",
            "bounds.problem(body): depth and count of arrays/objects",
            _bind(bounds.problem, body),
        ),
        Case("parse", "parse", "orjson.loads(body)", _bind(orjson.loads, body)),
        Case(
            "fields", "review fields", "review.read_review: the fields read, type-checked", _bind(read_review, parsed)
        ),
        Case("shape", "shape check", "shape.shape_problem(pod) (inside decide too)", _bind(shape_problem, pod)),
        Case(
            "decide",
            "decide",
            "decide(pod, ...) with the server's render cache",
            lambda: decide(pod, NAMESPACE, index, settings, rendered=rendered),
        ),
        Case("budget", "budget", "over_limit + seccomp_synced, version unknown (inside decide too)", budget),
        Case(
            "encode",
            "encode",
            "review.answer (base64 of the patch) + orjson.dumps",
            lambda: orjson.dumps(answer(request, outcome)),
        ),
        Case("log", "log line", "AdmissionLog: one JSON line, written to /dev/null", _bind(log, admitted)),
        Case("metrics", "metrics", "Metrics.observe: admissions counter + latency histogram", _bind(metrics, admitted)),
        Case(
            "events", "Events", "EventRecorder.observe, injected Pod (Events: skips/denials)", _bind(events, admitted)
        ),
        Case(
            "response",
            "response",
            "starlette Response(bytes, media_type=json)",
            lambda: Response(encoded, media_type=JSON),
        ),
        Case("whole", "whole, no HTTP", "read + parse_review + Admission.review + encode + Response", whole),
    ]


def _bind(call: Callable[[Any], object], argument: Any) -> Callable[[], object]:
    return lambda: call(argument)
