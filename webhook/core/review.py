"""AdmissionReview in and out, with no I/O: the server reads bytes and writes what this returns."""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from webhook.common.text import clip, json_type, quoted
from webhook.core import bounds
from webhook.core.decision import Deny, Inject, Outcome, Skip

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
MAX_BODY_BYTES = 3 * 1024 * 1024
_REASONS = {400: "BadRequest", 403: "Forbidden", 500: "InternalError"}


class BadReview(ValueError):
    """The body is not an AdmissionReview we can answer; the server replies 400 with this message."""


@dataclass(frozen=True, slots=True)
class Request:
    api_version: str
    uid: str
    operation: str
    kind: str
    sub_resource: str
    namespace: str
    object: Mapping[str, Any] | None  # the Pod, a JSON object, for a Pod CREATE; None otherwise
    dry_run: bool

    @property
    def is_pod_create(self) -> bool:
        return _is_pod_create(self.kind, self.operation, self.sub_resource)


def parse_review(body: bytes) -> Request:
    """The request, with every field we read checked for its JSON type; raises `BadReview` saying which."""
    too_costly = bounds.problem(body)
    if too_costly:
        raise BadReview(too_costly)
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadReview(f"body is not valid JSON: {clip(str(error), 200)}") from None
    return read_review(review)


def read_review(review: Any) -> Request:
    """The request of a parsed body, each field we read checked for its JSON type."""
    if not isinstance(review, dict):
        raise BadReview("body must be a JSON object (an AdmissionReview)")
    api_version = review.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise BadReview(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {_shown(api_version)}")
    if review.get("kind") != "AdmissionReview":
        raise BadReview(f"kind must be AdmissionReview, got {_shown(review.get('kind'))}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("AdmissionReview request has no uid")
    kind = request.get("kind")
    if kind is not None and not isinstance(kind, dict):
        raise BadReview(f"request.kind must be an object (group, version, kind), got {json_type(kind)}")
    dry_run = request.get("dryRun")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise BadReview(f"request.dryRun must be a boolean, got {json_type(dry_run)}")
    operation = _string(request, "operation", "request.operation")
    kind_name = _string(kind, "kind", "request.kind.kind") if kind else ""
    sub_resource = _string(request, "subResource", "request.subResource")
    namespace = _string(request, "namespace", "request.namespace")
    pod = None
    if _is_pod_create(kind_name, operation, sub_resource):
        pod = request.get("object")
        if not isinstance(pod, dict):
            raise BadReview(f"request.object must be a JSON object (the Pod) for a Pod CREATE, got {json_type(pod)}")
        namespace = namespace or _object_namespace(pod)
    return Request(api_version, uid, operation, kind_name, sub_resource, namespace, pod, dry_run is True)


def _is_pod_create(kind: str, operation: str, sub_resource: str) -> bool:
    return kind == "Pod" and operation == "CREATE" and not sub_resource


def _string(parent: Mapping[str, Any], key: str, path: str) -> str:
    """A string field; absent or null reads as ""."""
    value = parent.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadReview(f"{path} must be a string, got {json_type(value)}")
    return value


def _object_namespace(pod: Mapping[str, Any]) -> str:
    metadata = pod.get("metadata")
    if not isinstance(metadata, dict):
        return "default"
    return _string(metadata, "namespace", "request.object.metadata.namespace") or "default"


def _shown(value: Any) -> str:
    return quoted(value) if isinstance(value, str) else json_type(value)


def answer(request: Request, outcome: Outcome | None) -> dict[str, Any]:
    """The AdmissionReview reply, in the request's apiVersion; `None` means "not ours, allow"."""
    response: dict[str, Any] = {"uid": request.uid, "allowed": True}
    if isinstance(outcome, Inject):
        if outcome.op_count:
            response["patchType"] = "JSONPatch"
            response["patch"] = binascii.b2a_base64(outcome.patch, newline=False).decode("ascii")
        if outcome.warnings:
            response["warnings"] = outcome.warnings
    elif isinstance(outcome, Skip):
        if outcome.warnings:
            response["warnings"] = outcome.warnings
    elif isinstance(outcome, Deny):
        response["allowed"] = False
        response["status"] = {
            "code": outcome.code,
            "reason": _REASONS.get(outcome.code, "Forbidden"),
            "message": outcome.message,
        }
    return {"apiVersion": request.api_version, "kind": "AdmissionReview", "response": response}
