"""AdmissionReview parsing and answering, without a server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from webhook.decision import Deny, Inject, Skip
from webhook.review import BadReview, answer, parse_review


def review(**request: Any) -> bytes:
    body = {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE",
        "namespace": "agents",
        "object": {"metadata": {"name": "p"}},
        **request,
    }
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}).encode()


def test_a_pod_create_is_recognised() -> None:
    request = parse_review(review())
    assert request.is_pod_create
    assert (request.uid, request.namespace, request.dry_run) == ("u-1", "agents", False)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"operation": "UPDATE"}, False),
        ({"kind": {"group": "apps", "version": "v1", "kind": "Deployment"}}, False),
        ({"subResource": "ephemeralcontainers"}, False),
        ({"dryRun": True}, True),
    ],
)
def test_only_plain_pod_creates_are_ours(changes: dict[str, Any], expected: bool) -> None:
    assert parse_review(review(**changes)).is_pod_create is expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[]", "body must be a JSON object"),
        (b'{"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview"}', "apiVersion must be one of"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', "kind must be AdmissionReview, got 'Pod'"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "has no request object"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}', "request has no uid"),
    ],
)
def test_malformed_reviews_are_rejected_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(BadReview, match=message):
        parse_review(body)


def test_answer_echoes_uid_and_api_version_and_encodes_the_patch() -> None:
    request = parse_review(review())
    ops = [{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]
    reply = answer(request, Inject(ops, ["w"], "injected", "sales", None))
    assert reply["apiVersion"] == "admission.k8s.io/v1"
    assert reply["kind"] == "AdmissionReview"
    response = reply["response"]
    assert response["uid"] == "u-1"
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"])) == ops
    assert response["warnings"] == ["w"]


def test_answer_to_a_v1beta1_review_is_v1beta1() -> None:
    body = json.loads(review())
    body["apiVersion"] = "admission.k8s.io/v1beta1"
    assert answer(parse_review(json.dumps(body).encode()), None)["apiVersion"] == "admission.k8s.io/v1beta1"


def test_denial_carries_code_reason_and_message() -> None:
    reply = answer(parse_review(review()), Deny("unknown-identity", "pod p: no", code=403))
    assert reply["response"] == {
        "uid": "u-1",
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": "pod p: no"},
    }


def test_skip_is_allowed_without_patch_and_warns() -> None:
    reply = answer(parse_review(review()), Skip("no-identity", "m"))
    assert reply["response"] == {"uid": "u-1", "allowed": True, "warnings": ["m"]}


def test_namespace_falls_back_to_the_object_metadata() -> None:
    request = parse_review(review(namespace="", object={"metadata": {"namespace": "team"}}))
    assert request.namespace == "team"


def test_a_quiet_skip_has_no_warning() -> None:
    reply = answer(parse_review(review()), Skip("already-injected", "m", quiet=True))
    assert reply["response"] == {"uid": "u-1", "allowed": True}
