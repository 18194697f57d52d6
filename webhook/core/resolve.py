"""Which blueprint and agent identity a Pod gets, in the order the design pins.

1. the `entra.io/agent-identity` annotation; else the one AgentIdentity whose
   `spec.serviceAccounts` lists the Pod's service account;
2. the blueprint from the `entra.io/blueprint` annotation, else from the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

from webhook.common.models import (
    BLUEPRINT,
    IDENTITY,
    AgentBlueprint,
    AgentIdentity,
    ConfigObject,
    InvalidObject,
    ObjectRef,
)
from webhook.common.text import NAME_LIMIT, clip, elide, listing
from webhook.core.index import ConfigView
from webhook.core.pod import AGENT_IDENTITY, PodOptions
from webhook.core.pod import BLUEPRINT as BLUEPRINT_ANNOTATION
from webhook.core.reasons import Reason


@dataclass(frozen=True, slots=True)
class Resolved:
    blueprint: AgentBlueprint
    identity: AgentIdentity | None


@dataclass(frozen=True, slots=True)
class Unnamed:
    """The Pod names nothing: it is admitted unchanged, with a warning carrying `message`."""

    message: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The Pod names something wrong. `missing` is set when a live lookup could still find it (or find it
    ready: the controller may have written its status a moment ago)."""

    reason: Reason
    message: str
    missing: ObjectRef | None = None
    not_ready: ObjectRef | None = None  # the managed identity the controller has not made ready yet


Resolution = Resolved | Unnamed | Refused
INVALID_LIMIT = 2048  # an invalid resource's message as quoted in a denial (its values are bounded already)


def resolve(namespace: str, service_account: str, options: PodOptions, config: ConfigView) -> Resolution:
    identity: AgentIdentity | None = None
    if options.identity is not None:
        found = config.get(IDENTITY, namespace, options.identity)
        if not isinstance(found, AgentIdentity):
            return _refused(config, IDENTITY, namespace, options.identity, f"{AGENT_IDENTITY} names", found)
        identity = found
    else:
        bound = config.bound_identities(namespace, service_account)
        if len(bound) > 1:
            names = listing(item.ref.name for item in bound)
            return Refused(
                "ambiguous-identity",
                f'service account "{clip(service_account, NAME_LIMIT)}" is listed in spec.serviceAccounts of several '
                f"AgentIdentities ({names}): name one with the {AGENT_IDENTITY} annotation, or list the "
                "service account in only one of them",
            )
        identity = bound[0] if bound else None

    if options.blueprint is not None:
        if identity is not None and identity.spec.blueprint != options.blueprint:
            return Refused(
                "blueprint-mismatch",
                f'{BLUEPRINT_ANNOTATION} names "{options.blueprint}", but AgentIdentity "{identity.ref.name}" '
                f'belongs to blueprint "{identity.spec.blueprint}": make them agree or drop the '
                f"{BLUEPRINT_ANNOTATION} annotation",
            )
        blueprint_name = options.blueprint
    elif identity is not None:
        blueprint_name = identity.spec.blueprint
    else:
        return Unnamed(
            f"names no agent identity, so no sidecar was injected: add the {AGENT_IDENTITY} annotation, "
            f'or list service account "{clip(service_account, NAME_LIMIT)}" in an AgentIdentity\'s spec.serviceAccounts'
        )

    if identity is not None and not identity.ready:
        return _not_ready(identity)
    blueprint = config.get(BLUEPRINT, namespace, blueprint_name)
    if not isinstance(blueprint, AgentBlueprint):
        if options.blueprint is not None or identity is None:
            named_by = f"{BLUEPRINT_ANNOTATION} names"
        else:
            named_by = f'AgentIdentity "{identity.ref.name}" names blueprint'
        return _refused(config, BLUEPRINT, namespace, blueprint_name, named_by, blueprint)
    return Resolved(blueprint, identity)


def _refused(
    config: ConfigView, kind: str, namespace: str, name: str, named_by: str, found: ConfigObject | None
) -> Refused:
    """Why what the Pod names (`found`: absent, invalid, or of another kind) cannot serve it."""
    if not isinstance(found, InvalidObject):
        have = listing(config.names(kind, namespace)) or "none"
        return Refused(
            "unknown-identity" if kind == IDENTITY else "unknown-blueprint",
            f'{named_by} "{name}", but namespace "{clip(namespace, NAME_LIMIT)}" has no {kind} of that name '
            f"(have: {have})",
            missing=ObjectRef(kind, namespace, name),
        )
    return Refused("invalid-config", f'{named_by} "{name}", but {elide(found.message, INVALID_LIMIT)}: fix the {kind}')


def _not_ready(identity: AgentIdentity) -> Refused:
    """A managed identity the controller has not provisioned: ReplicaSets retry, so the Pods come once it is."""
    condition = identity.status.ready
    if condition is None:
        said = "the controller has not reported on it yet (is `entra-webhook controller` running?)"
    else:
        said = f"Ready={condition.status}, {condition.reason or 'no reason'}: {condition.message or 'no message'}"
    return Refused(
        "identity-not-ready",
        f'AgentIdentity "{identity.ref.name}" is managed by the controller and not ready yet ({said}); '
        f"Pods naming it are admitted once it is: kubectl describe agentidentity {identity.ref.name} "
        f"-n {identity.ref.namespace}",
        missing=identity.ref,
        not_ready=identity.ref,
    )
