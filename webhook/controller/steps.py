"""What one pass over an `AgentIdentity` does and what it reports, decided without I/O.

`provision.py` carries these out; each answers from the resource, what Graph said and the clock it
is given, so that every branch has a unit test with a fixed clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.common.models import IDENTITY, READY, AgentIdentity, InvalidObject, parse_resource
from webhook.controller import advice
from webhook.controller.entra import EntraIdentity
from webhook.controller.reconcile import (
    FINALIZER,
    SPONSORS_PREFIX,
    SYNCED,
    Changes,
    Doomed,
    Wanted,
    condition_of,
    doomed,
    doomed_while_invalid,
    ready_and_synced,
    ready_since,
    sponsors_tag,
)

Json = dict[str, Any]

# Failures that make a provisioned identity unusable for Pods, not merely out of sync.
UNUSABLE = frozenset({"NotFoundInEntra", "NotOfBlueprint"})
SPONSORS_UNSYNCED = "SponsorsNotSynced"


@dataclass(frozen=True)
class Skip:
    """Nothing to do: not ours, or invalid and never ours."""

    outcome: str


@dataclass(frozen=True)
class ReportInvalid:
    message: str
    managed: bool  # ours, or asking to be (sponsors): Synced too, and retried


@dataclass(frozen=True)
class Resolve:
    """An identity the controller does not manage (spec.clientId, no sponsors): Ready once its blueprint resolves."""

    identity: AgentIdentity


@dataclass(frozen=True)
class Release:
    """Drop our finalizer (leaving `finalizers`), after deleting in Entra what `doomed` says."""

    finalizers: list[str]
    doomed: Doomed | None
    outcome: str = "Released"
    warning: str = ""


@dataclass(frozen=True)
class Provision:
    identity: AgentIdentity
    finalizers: list[str] | None  # to write first (ours added), or None when it is there


Step = Skip | ReportInvalid | Resolve | Release | Provision


def first_step(raw: Mapping[str, Any]) -> Step:
    """From the resource alone: ours to provision, to release (deleted, or no longer managed), to report on
    (unmanaged, or invalid), or nothing (deleted and never ours)."""
    parsed = parse_resource(IDENTITY, dict(raw))
    metadata = raw.get("metadata") or {}
    finalizers = list(metadata.get("finalizers") or [])
    ours, rest = FINALIZER in finalizers, [f for f in finalizers if f != FINALIZER]
    deleting = bool(metadata.get("deletionTimestamp"))
    if isinstance(parsed, InvalidObject):
        if deleting and ours:
            found = doomed_while_invalid(parsed.ref, raw)
            warning = "" if found else f"{parsed.ref} deleted while invalid: its Entra identity is left as it is"
            return Release(rest, found, warning=warning)
        if not deleting:
            return ReportInvalid(parsed.message, managed=ours or bool((raw.get("spec") or {}).get("sponsors")))
        return Skip("Invalid")
    assert isinstance(parsed, AgentIdentity)
    if deleting or not parsed.spec.managed:
        if ours:
            return Release(rest, doomed(parsed) if deleting else None)  # no longer managed: left as it is
        return Skip("Unmanaged") if deleting else Resolve(parsed)
    return Provision(parsed, None if ours else [*finalizers, FINALIZER])


def missing(
    identity: AgentIdentity, known: str, status: Mapping[str, Any], now: dt.datetime, replication: float
) -> str:
    """A known id Graph says does not exist: "" while that is replication right after the create, else
    the message of `NotFoundInEntra`."""
    since = ready_since(status)
    fresh = since is not None and (now - since).total_seconds() < replication
    if fresh and identity.status.client_id == known:
        return ""
    where = "spec.clientId" if identity.spec.client_id else "status.clientId"
    return (
        f"agent identity {known} ({where}) does not exist in Entra: restore it within 30 days "
        f"(Graph: POST /directory/deletedItems/{known}/restore), or "
        + ("give the id of an existing one" if identity.spec.client_id else "delete and re-create this AgentIdentity")
    )


def not_of_blueprint(current: EntraIdentity, app_id: str, blueprint: str) -> str:
    """ "" when the identity is the blueprint's, else the message of `NotOfBlueprint`."""
    if current.blueprint_id == app_id.lower():
        return ""
    return (
        f"agent identity {current.id} belongs to blueprint {current.blueprint_id or 'unknown'}, not to "
        f'"{blueprint}" ({app_id}): name an identity of this blueprint in spec.clientId'
    )


def ready_message(current: EntraIdentity, app_id: str) -> str:
    return f"agent identity {current.client_id} ({current.display_name}) exists in Entra under blueprint {app_id}"


def provisioned(
    identity: AgentIdentity,
    current: EntraIdentity,
    app_id: str,
    plan: Changes,
    directory_refusal: str | None,
    graph_url: str,
) -> tuple[Wanted, Wanted]:
    """Ready, and Synced unless sponsors could not be brought in line (which never makes it unusable)."""
    reason = "Adopted" if identity.spec.client_id else "Provisioned"
    message = ready_message(current, app_id)
    ready, synced = ready_and_synced(True, reason, message)
    if plan.sponsors_unsynced or directory_refusal:
        tags = list(plan.patch.get("tags", current.tags))
        applied = [t for t in tags if not t.startswith(SPONSORS_PREFIX)] + [sponsors_tag(identity.spec.sponsors)]
        unsynced = advice.sponsors_unsynced(directory_refusal, graph_url, current.id, applied)
        synced = Wanted(SYNCED, False, SPONSORS_UNSYNCED, unsynced)
    return ready, synced


def failed(
    status: Mapping[str, Any], identity: AgentIdentity, reason: str, message: str, unusable: bool
) -> tuple[Wanted, ...]:
    """An identity Pods can use stays Ready while only keeping it in line with the spec fails (Graph or
    the token endpoint down, a sponsor that does not exist): the sidecar needs the blueprint's
    credential and this id, not the controller. Otherwise (or when the failure makes it `unusable`:
    gone, or not the blueprint's) both conditions say what failed."""
    recorded = identity.spec.client_id or status.get("clientId")
    if recorded and condition_of(status).get("status") == "True" and not unusable:
        return (Wanted(SYNCED, False, reason, message),)
    return ready_and_synced(False, reason, message)


def deletion_failed(identity: Doomed, message: str) -> str:
    """A deletion that cannot go on, and the two ways out."""
    ref = f"agentidentity {identity.ref.name} -n {identity.ref.namespace}"
    return (
        f"cannot delete the agent identity in Entra: {message}. Fix that; or keep it in Entra: "
        f"{advice.retain_command(identity.ref)}; or delete it yourself and remove the finalizer: "
        f"""kubectl patch {ref} --type=merge -p '{{"metadata":{{"finalizers":null}}}}'"""
    )


def is_ready(status: Mapping[str, Any], reason: str, generation: int) -> bool:
    """Ready and Synced, for this reason and generation."""
    return all(
        (c := condition_of(status, kind)).get("status") == "True"
        and c.get("reason") == reason
        and c.get("observedGeneration") == generation
        for kind in (READY, SYNCED)
    )
