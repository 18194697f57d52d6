"""AdmissionReview parsing and answering, without a server."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from webhook.core.decision import Deny, Inject, Skip
from webhook.core.review import BadReview, answer, parse_review


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
    reply = answer(request, Inject.of(ops, ["w"], "injected", "sales", None))
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


@pytest.mark.parametrize("field", ["namespace", "operation", "subResource"])
@pytest.mark.parametrize(
    ("value", "got"), [([], "an array"), ({"a": 1}, "an object"), (5, "a number"), (True, "a boolean")]
)
def test_scalar_request_fields_of_another_type_are_rejected_naming_the_field(field: str, value: Any, got: str) -> None:
    with pytest.raises(BadReview) as error:
        parse_review(review(**{field: value}))
    assert str(error.value) == f"request.{field} must be a string, got {got}"


@pytest.mark.parametrize("field", ["namespace", "operation", "subResource"])
def test_a_request_field_nested_a_thousand_deep_is_rejected_before_parsing(field: str) -> None:
    # Once a RecursionError (HTTP 500) in str(); now the body never reaches the parser.
    body = review(**{field: "DEEP"}).replace(b'"DEEP"', b"[" * 1000 + b"]" * 1000)
    with pytest.raises(BadReview, match=r"^body nests JSON arrays and objects more than 64 deep$"):
        parse_review(body)


def test_the_kind_must_be_an_object_with_a_string_kind() -> None:
    with pytest.raises(BadReview, match=r"^request.kind must be an object \(group, version, kind\), got a string$"):
        parse_review(review(kind="Pod"))
    with pytest.raises(BadReview, match=r"^request.kind.kind must be a string, got an array$"):
        parse_review(review(kind={"group": "", "version": "v1", "kind": ["Pod"]}))


def test_dry_run_must_be_a_boolean() -> None:
    with pytest.raises(BadReview, match=r"^request.dryRun must be a boolean, got a string$"):
        parse_review(review(dryRun="true"))


@pytest.mark.parametrize(("pod", "got"), [([], "an array"), ("pod", "a string"), (None, "null"), (7, "a number")])
def test_a_pod_create_whose_object_is_not_an_object_is_rejected(pod: Any, got: str) -> None:
    # Once answered "allowed" without a look at the Pod.
    with pytest.raises(BadReview) as error:
        parse_review(review(object=pod))
    assert str(error.value) == f"request.object must be a JSON object (the Pod) for a Pod CREATE, got {got}"


def test_other_operations_may_carry_any_object() -> None:
    request = parse_review(review(operation="DELETE", object=None))
    assert not request.is_pod_create
    assert request.object is None


def test_the_namespace_fallback_must_be_a_string_too() -> None:
    with pytest.raises(BadReview, match=r"^request.object.metadata.namespace must be a string, got an array$"):
        parse_review(review(namespace=None, object={"metadata": {"namespace": ["team"]}}))


def test_an_absent_namespace_everywhere_reads_as_default() -> None:
    assert parse_review(review(namespace=None, object={"metadata": None})).namespace == "default"


def test_rejections_quote_at_most_a_few_dozen_characters_of_what_was_sent() -> None:
    body = json.dumps({"apiVersion": "x" * 1_000_000, "kind": "AdmissionReview"}).encode()
    with pytest.raises(BadReview) as error:
        parse_review(body)
    assert str(error.value) == (
        f"apiVersion must be one of admission.k8s.io/v1, admission.k8s.io/v1beta1, got '{'x' * 64}…'"
    )
    with pytest.raises(BadReview, match=r"^kind must be AdmissionReview, got an array$"):
        parse_review(b'{"apiVersion": "admission.k8s.io/v1", "kind": [[[]]]}')
