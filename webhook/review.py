"""AdmissionReview in and out, with no I/O: the server reads bytes and writes what this returns."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from webhook.decision import Deny, Inject, Outcome, Skip

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
    object: Mapping[str, Any] | None
    dry_run: bool

    @property
    def is_pod_create(self) -> bool:
        return self.kind == "Pod" and self.operation == "CREATE" and not self.sub_resource


def parse_review(body: bytes) -> Request:
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadReview(f"body is not valid JSON: {error}") from None
    if not isinstance(review, dict):
        raise BadReview("body must be a JSON object (an AdmissionReview)")
    if review.get("apiVersion") not in API_VERSIONS:
        raise BadReview(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {review.get('apiVersion')!r}")
    if review.get("kind") != "AdmissionReview":
        raise BadReview(f"kind must be AdmissionReview, got {review.get('kind')!r}")
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview("AdmissionReview has no request object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("AdmissionReview request has no uid")
    kind = request.get("kind")
    obj = request.get("object")
    return Request(
        api_version=review["apiVersion"],
        uid=uid,
        operation=str(request.get("operation") or ""),
        kind=str(kind.get("kind") or "") if isinstance(kind, dict) else "",
        sub_resource=str(request.get("subResource") or ""),
        namespace=str(request.get("namespace") or _object_namespace(obj)),
        object=obj if isinstance(obj, dict) else None,
        dry_run=request.get("dryRun") is True,
    )


def _object_namespace(obj: Any) -> str:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return str(metadata.get("namespace") or "default") if isinstance(metadata, dict) else "default"


def answer(request: Request, outcome: Outcome | None) -> dict[str, Any]:
    """The AdmissionReview reply, in the request's apiVersion; `None` means "not ours, allow"."""
    response: dict[str, Any] = {"uid": request.uid, "allowed": True}
    if isinstance(outcome, Inject):
        if outcome.ops:
            patch = orjson.dumps(outcome.ops)
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(patch).decode()
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
