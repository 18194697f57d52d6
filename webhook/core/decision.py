"""The mutation core: one pure function from a raw Pod to inject, skip or deny.

The server and the offline `inject` command both call `decide`; neither adds rules of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.common.models import ObjectRef
from webhook.core.encoded import decode, value
from webhook.core.index import ConfigView
from webhook.core.inject import Conflict, Plan, plan
from webhook.core.pod import (
    INJECT_LABEL,
    MIRROR,
    BadAnnotation,
    describe,
    options_of,
    service_account,
)
from webhook.core.pod import SYSTEM_NAMESPACES as _SYSTEM_NAMESPACES
from webhook.core.reasons import Reason
from webhook.core.rendered import Rendered
from webhook.core.resolve import Refused, Resolved, Unnamed, resolve
from webhook.core.settings import Settings
from webhook.core.shape import shape_problem

Json = dict[str, Any]
_NOTHING: Mapping[str, Any] = {}  # read only


@dataclass(frozen=True, slots=True)
class Inject:
    patch: bytes  # the JSON Patch, encoded: what the AdmissionReview carries
    op_count: int
    warnings: list[str]
    reason: Reason  # "injected", or "reinvoked" when only late containers got env
    blueprint: str
    identity: str | None

    @classmethod
    def of(cls, ops: list[Json], warnings: list[str], reason: Reason, blueprint: str, identity: str | None) -> Inject:
        return cls(value(ops), len(ops), warnings, reason, blueprint, identity)

    @property
    def ops(self) -> list[Json]:
        """The patch as new Python objects on each read: the caller's to change."""
        ops: list[Json] = decode(self.patch)
        return ops


@dataclass(frozen=True, slots=True)
class Skip:
    """Admitted unchanged; the message is also a warning to whoever created the Pod, unless `quiet`."""

    reason: Reason
    message: str
    quiet: bool = False

    @property
    def warnings(self) -> list[str]:
        return [] if self.quiet else [self.message]


@dataclass(frozen=True, slots=True)
class Deny:
    reason: Reason
    message: str
    code: int = 403
    missing: ObjectRef | None = None  # a named object that a live lookup might still find (or find ready)
    not_ready: ObjectRef | None = None  # a managed identity the controller has not made ready yet


Outcome = Inject | Skip | Deny


def decide(
    pod: Mapping[str, Any],
    namespace: str,
    config: ConfigView,
    settings: Settings,
    server_version: tuple[int, int] | None = None,
    subject: str | None = None,
    rendered: Rendered | None = None,
) -> Outcome:
    """`subject` names the object in messages where it is not a Pod (a workload's template).

    `rendered` keeps the Pod-independent parts across calls (the server keeps one); without it they
    are rendered for this call alone.
    """
    if namespace in _SYSTEM_NAMESPACES or namespace == settings.own_namespace:
        return Skip("system-namespace", f'{_who(pod, namespace, subject)}: namespace "{namespace}" is never injected')
    malformed = shape_problem(pod)
    if malformed:
        who = _who(pod, namespace, subject)
        return Deny("malformed-pod", f"{who}: {malformed}, which Kubernetes refuses too: correct it", code=400)
    # Past the shape check, each of these is an object (or a list) of the right type, or absent.
    metadata = pod.get("metadata") or _NOTHING
    annotations = metadata.get("annotations") or _NOTHING
    if MIRROR in annotations:
        return Skip("mirror-pod", f"{_who(pod, namespace, subject)}: static (mirror) pods are never injected")
    if (metadata.get("labels") or _NOTHING).get(INJECT_LABEL) == "disabled":
        return Skip("opted-out", f"{_who(pod, namespace, subject)}: label {INJECT_LABEL}=disabled opts it out")
    if not (pod.get("spec") or _NOTHING).get("containers"):
        who = _who(pod, namespace, subject)
        return Skip("invalid-pod", f"{who}: has no spec.containers; left to the API server's validation")
    try:
        options = options_of(annotations)
    except BadAnnotation as error:
        return Deny("bad-annotation", f"{_who(pod, namespace, subject)}: {error}", code=400)

    resolution = resolve(namespace, service_account(pod), options, config)
    if isinstance(resolution, Unnamed):
        return Skip("no-identity", f"{_who(pod, namespace, subject)}: {resolution.message}")
    if isinstance(resolution, Refused):
        message = f"{_who(pod, namespace, subject)}: {resolution.message}"
        return Deny(resolution.reason, message, missing=resolution.missing, not_ready=resolution.not_ready)

    if rendered is None:
        rendered = Rendered()
    rendered.bind(config, settings, server_version)
    result = plan(pod, resolution, options, settings, server_version, rendered)
    if isinstance(result, Conflict):
        return Deny(result.reason, f"{_who(pod, namespace, subject)}: {result.message}", code=400)
    return _injected(result, resolution, pod, namespace, subject)


def _who(pod: Mapping[str, Any], namespace: str, subject: str | None) -> str:
    """How messages name the object; only spelled out when there is a message."""
    return subject or describe(pod, namespace)


def _injected(
    result: Plan, resolution: Resolved, pod: Mapping[str, Any], namespace: str, subject: str | None
) -> Outcome:
    if result.reinvoked and not result.patch.op_count:
        # A reinvocation with nothing new to do: not news to the user.
        who = _who(pod, namespace, subject)
        return Skip("already-injected", f"{who}: already has the sidecar and every app container has its env", True)
    reason: Reason = "reinvoked" if result.reinvoked else "injected"
    warnings = []
    if result.warnings:
        who = _who(pod, namespace, subject)
        warnings = [f"{who}: {warning}" for warning in result.warnings]
    identity = resolution.identity.ref.name if resolution.identity else None
    patch = result.patch
    return Inject(patch.document(), patch.op_count, warnings, reason, resolution.blueprint.ref.name, identity)
