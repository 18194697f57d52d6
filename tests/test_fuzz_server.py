"""Properties of the served endpoint over generated bodies (hypothesis): a real `entra-webhook serve` over TLS.

Whatever the body: the answer is 200, 400 or 413 (never 500), a 400 carries a short JSON error, a
200 is an AdmissionReview for the same uid whose patch applies to the Pod it was sent, and every
message is bounded and names the Pod.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonpatch
import pytest
from hypothesis import given

from tests.conftest import FIXTURES
from tests.fuzz import budget, count
from tests.podchecks import overwritten
from tests.servers import Served, make_certs, serve
from tests.strategies import review_bodies
from tests.test_fuzz_core import MESSAGE_LIMIT, expected_subject


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("fuzz-server")
    with serve(make_certs(workdir / "certs"), workdir, "--config", str(FIXTURES / "config.yaml")) as served:
        yield served


@pytest.fixture(scope="module")
def client(server: Served) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def _check_reply(review: dict[str, Any], reply: dict[str, Any]) -> None:
    request = review["request"]
    response = reply["response"]
    assert reply["apiVersion"] == review["apiVersion"]
    assert response["uid"] == request["uid"]
    pod = request.get("object")
    subject = expected_subject(pod, request.get("namespace") or "default") if isinstance(pod, dict) else ""
    messages = [*response.get("warnings", []), *([response["status"]["message"]] if "status" in response else [])]
    for message in messages:
        assert message.startswith(subject), message[:300]
        assert len(message) <= MESSAGE_LIMIT
        assert "internal error" not in message
    if "patch" in response:
        ops = json.loads(base64.b64decode(response["patch"]))
        assert overwritten(pod, ops) == []
        jsonpatch.apply_patch(pod, ops)
        count("served: patches applied")
    count(f"served: 200 {'allowed' if response['allowed'] else 'denied'}")


@budget(quick=100, long=10_000)
@given(review_bodies())
def test_any_body_gets_an_answer_and_never_a_500(client: httpx.Client, drawn: tuple[bytes, Any]) -> None:
    body, review = drawn
    response = client.post("/mutate", content=body, headers={"content-type": "application/json"})
    count("served: bodies")
    assert response.status_code in {200, 400}, (response.status_code, response.text[:500])
    if response.status_code == 400:
        error = response.json()["error"]
        assert isinstance(error, str)
        assert len(error) <= 300
        count("served: 400")
        return
    # Raw variants (a cut at the very end, nesting within the limit) may still be a whole review.
    _check_reply(review if review is not None else json.loads(body), response.json())


def test_the_server_is_healthy_after_the_campaign(client: httpx.Client, server: Served) -> None:
    assert client.get("/healthz").status_code == 200
    assert server.process.poll() is None
    assert "Traceback" not in server.logs()
