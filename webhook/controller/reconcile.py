"""What the controller wants, decided without I/O: bodies, diffs, conditions, markers, advice.

The provisioner (`provision.py`) reads the cluster and Graph and calls these; each answers from
its arguments alone, so every rule here has a unit test without a server.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.common.models import (
    DEFAULT_AUDIENCE,
    READY,
    AgentBlueprint,
    AgentIdentity,
    ObjectRef,
    Sponsor,
)
from webhook.common.text import clip

Json = dict[str, Any]

FINALIZER = "entra.io/agent-identity"
MARKER_PREFIX = "entra-webhook:"
PENDING = "pendingCreate"
SYNCED = "Synced"  # Entra is in line with the spec; a failure here leaves a usable identity Ready
# Failures that make a provisioned identity unusable for Pods, not merely out of sync.
UNUSABLE = frozenset({"NotFoundInEntra", "NotOfBlueprint", "Authorization_RequestDenied"})
RECHECK_MIN, RECHECK_MAX = 1.0, 30.0  # seconds between lists while waiting for a create to show
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_FEDERATED_CREDENTIALS = 20
FEDERATED_FIT = "FederatedCredentialsFit"
MESSAGE_LIMIT = 1000
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def marker(cluster: str, uid: str) -> str:
    """The tag that says "made for this resource in this cluster"; found again before any create."""
    return f"{MARKER_PREFIX}{cluster}:{uid}"


def display_name(identity: AgentIdentity) -> str:
    return identity.spec.display_name or f"{identity.ref.namespace}/{identity.ref.name}"[:256]


def sponsor_reference(sponsor: Sponsor, graph_url: str) -> str:
    collection = "users" if sponsor.kind == "User" else "groups"
    return f"{graph_url.rstrip('/')}/{collection}/{sponsor.id}"


def create_body(identity: AgentIdentity, blueprint_app_id: str, tag: str, graph_url: str) -> Json:
    return {
        "displayName": display_name(identity),
        "agentIdentityBlueprintId": blueprint_app_id,
        "sponsors@odata.bind": [sponsor_reference(sponsor, graph_url) for sponsor in identity.spec.sponsors],
        "tags": [tag],
    }


def find_marked(objects: Iterable[Json], *tags: str) -> list[Json]:
    """Identities carrying one of our markers, oldest first (there is one unless someone copied the tag)."""
    found = [obj for obj in objects if set(tags) & set(obj.get("tags") or [])]
    return sorted(found, key=lambda obj: (str(obj.get("createdDateTime") or ""), str(obj.get("id"))))


# -- the intent to create, recorded before the create is sent --------------------------------


@dataclass(frozen=True)
class Intent:
    """`status.pendingCreate`: a create about to be sent (or sent, its answer never recorded)."""

    marker: str
    since: dt.datetime


def intent_status(tag: str, now: dt.datetime) -> Json:
    return {"marker": tag, "since": now.strftime(TIME_FORMAT)}


def intent_of(status: Mapping[str, Any]) -> Intent | None:
    """The recorded intent, read leniently: a malformed one is none."""
    value = status.get(PENDING)
    if not isinstance(value, Mapping):
        return None
    marker, since = value.get("marker"), _time(value.get("since"))
    if not isinstance(marker, str) or not marker.startswith(MARKER_PREFIX) or since is None:
        return None
    return Intent(marker, since)


@dataclass(frozen=True)
class Found:
    """Entra lists an identity with our marker: it is ours, whatever the status says."""

    identity: Json


@dataclass(frozen=True)
class Create:
    """Nothing of ours exists. `expired`: an earlier intent whose identity never appeared in time."""

    expired: Intent | None = None


@dataclass(frozen=True)
class Wait:
    """A create may have happened and Entra's list may not show it yet: list again after `recheck`."""

    intent: Intent
    recheck: float
    until: dt.datetime  # then the create is taken never to have happened


CreateStep = Found | Create | Wait


def create_step(intent: Intent | None, listed: Iterable[Json], tag: str, now: dt.datetime, window: float) -> CreateStep:
    """What to do about an identity with no id on record, from the intent and what Entra lists.

    Graph's lists lag its creates (replication), so an intent whose identity is not listed yet is
    waited for, for `window` seconds from when it was recorded, before a second create is risked.
    """
    marked = find_marked(listed, tag, *([intent.marker] if intent else []))
    if marked:
        return Found(marked[0])
    if intent is None:
        return Create()
    elapsed = (now - intent.since).total_seconds()
    left = window - elapsed
    if left <= 0:
        return Create(expired=intent)
    recheck = min(max(RECHECK_MIN, elapsed / 2), RECHECK_MAX, left)
    return Wait(intent, recheck, intent.since + dt.timedelta(seconds=window))


@dataclass(frozen=True)
class Changes:
    patch: Json
    add: tuple[str, ...]  # sponsor references to add
    remove: tuple[str, ...]  # sponsor object ids to remove

    def __bool__(self) -> bool:
        return bool(self.patch or self.add or self.remove)


def changes(
    current: Mapping[str, Any], sponsors: Sequence[str], identity: AgentIdentity, tag: str, graph_url: str
) -> Changes:
    """How Entra's object differs from the spec: display name, our marker tag, sponsors."""
    patch: Json = {}
    if current.get("displayName") != display_name(identity):
        patch["displayName"] = display_name(identity)
    tags = list(current.get("tags") or [])
    if tag not in tags:
        patch["tags"] = [*tags, tag]
    wanted = {sponsor.id: sponsor for sponsor in identity.spec.sponsors}
    have = {sponsor.lower() for sponsor in sponsors}
    add = tuple(sponsor_reference(wanted[i], graph_url) for i in sorted(wanted) if i not in have)
    remove = tuple(sorted(have - set(wanted)))
    return Changes(patch, add, remove)


def conditions(
    previous: object, kind: str, status: bool, reason: str, message: str, generation: int, now: dt.datetime
) -> list[Json]:
    """The conditions list with `kind` set; its transition time moves only when its status does."""
    kept = [c for c in previous if isinstance(c, dict) and c.get("type") != kind] if isinstance(previous, list) else []
    old = (
        next((c for c in previous if isinstance(c, dict) and c.get("type") == kind), None)
        if isinstance(previous, list)
        else None
    )
    value = "True" if status else "False"
    since = old.get("lastTransitionTime") if old and old.get("status") == value else None
    condition = {
        "type": kind,
        "status": value,
        "reason": reason,
        "message": clip(message, MESSAGE_LIMIT - 1),
        "observedGeneration": generation,
        "lastTransitionTime": since or now.strftime(TIME_FORMAT),
    }
    return [*kept, condition]


def ready_condition(status: object) -> Mapping[str, Any] | None:
    if not isinstance(status, Mapping) or not isinstance(status.get("conditions"), list):
        return None
    found = [c for c in status["conditions"] if isinstance(c, Mapping) and c.get("type") == READY]
    return found[-1] if found else None


def ready_since(status: object) -> dt.datetime | None:
    """When Ready last became True, if it is True."""
    condition = ready_condition(status)
    if condition is None or condition.get("status") != "True":
        return None
    return _time(condition.get("lastTransitionTime"))


def _time(value: object) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def status_of(raw: Mapping[str, Any]) -> Json:
    """The status we wrote, or an empty one when it is missing or malformed."""
    value = raw.get("status")
    return value if isinstance(value, dict) else {}


def ready_counts(raws: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """Managed identities (those with sponsors) by their Ready condition's (status, reason)."""
    counts: dict[tuple[str, str], int] = {}
    for raw in raws:
        spec = raw.get("spec")
        if not isinstance(spec, Mapping) or not spec.get("sponsors"):
            continue
        ready = ready_condition(raw.get("status"))
        key = ("Unknown", "NotReported")
        if ready is not None:
            key = (str(ready.get("status"))[:10], str(ready.get("reason") or "NoReason")[:80])
        counts[key] = counts.get(key, 0) + 1
    return counts


# -- what to do about each failure -------------------------------------------------------------

GRAPH_ADVICE = {
    "AgentIdentity_LimitExceeded": (
        "the blueprint has reached its limit of agent identities (250, soft-deleted ones included): delete "
        "identities you no longer use, or purge soft-deleted ones (Graph: DELETE /directory/deletedItems/ID)"
    ),
    "Error_AgentIdentitySelfCreateRequired": (
        "a blueprint may only create agent identities under its own app id: check the AgentBlueprint's clientId"
    ),
    "AgentIdentity_AgentBlueprintPrincipalDoesNotExist": (
        "the blueprint has no service principal in this tenant: an admin creates it once "
        "(Graph: POST /servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal with its appId)"
    ),
    "AgentIdentity_IncompatibleParentType": "the AgentBlueprint's clientId is not an agent identity blueprint",
    "Authorization_RequestDenied": (
        "the blueprint may not do this: it manages only agent identities under its own app id "
        "(AgentIdentity.CreateAsManager)"
    ),
    "Request_ResourceNotFound": "a sponsor does not exist: check the user and group object ids in spec.sponsors",
    "InvalidAuthenticationToken": "Graph refused the blueprint's token: check the authority and tenant",
    "TooManyRequests": "Graph is throttling: the controller retries after the time it asks for",
    "TransportError": "Graph could not be reached: check the network and --graph-url",
}

TOKEN_ADVICE = {
    "AADSTS700016": "the blueprint's clientId or tenantId is wrong",
    "AADSTS90002": "the blueprint's tenantId is wrong",
    "AADSTS7000215": "the Secret holds a wrong client secret value (the value, not its id)",
    "AADSTS7000222": "the client secret has expired: add a new one to the blueprint and update the Secret",
    "AADSTS70021": "add the federated credential listed in the AgentBlueprint's status to the blueprint",
    "AADSTS700211": "the issuer differs from the blueprint's federated credentials: add the one in the "
    "AgentBlueprint's status",
    "AADSTS700212": "the audience differs from the blueprint's federated credential (want api://AzureADTokenExchange)",
    "AADSTS700213": "no federated credential for the controller's service account: add the one listed in the "
    "AgentBlueprint's status to the blueprint",
    "AADSTS700024": "the projected token has expired: check the node's clock and that the token volume is mounted",
    "AADSTS700027": "the token's signature did not verify against the cluster issuer's published keys",
    "AADSTS50027": "the controller's token file does not hold a JWT: check --token-file",
    "TokenEndpointUnreachable": "the token endpoint could not be reached: check the blueprint's instance, "
    "--authority-host and --token-file",
}


def graph_advice(code: str) -> str:
    return GRAPH_ADVICE.get(code, "see Graph's message")


def token_advice(code: str) -> str:
    return TOKEN_ADVICE.get(code, "see the AADSTS code in Entra's error reference")


def grant_commands(secret: ObjectRef, controller: tuple[str, str]) -> str:
    """The two kubectl commands that give the controller its one Secret, and nothing else."""
    name = f"entra-controller-{secret.name}"[:63].rstrip("-.")
    namespace, account = controller
    return (
        f"kubectl create role {name} -n {secret.namespace} --verb=get --resource=secrets "
        f"--resource-name={secret.name} && kubectl create rolebinding {name} -n {secret.namespace} "
        f"--role={name} --serviceaccount={namespace}:{account}"
    )


# -- the blueprint's federated credentials -----------------------------------------------------


def federated_credentials(
    blueprint: AgentBlueprint,
    identities: Iterable[AgentIdentity],
    issuer: str,
    controller: tuple[str, str] | None,
) -> list[Json]:
    """One per service account that signs in as this workload-identity blueprint."""
    credential = blueprint.spec.credential
    if credential is None or credential.workload_identity is None:
        return []
    audience = credential.workload_identity.audience
    namespace = blueprint.ref.namespace
    mine = [identity for identity in identities if identity.spec.blueprint == blueprint.ref.name]
    wanted = {(namespace, account, audience) for identity in mine for account in identity.spec.service_accounts}
    if controller is not None and any(identity.spec.managed for identity in mine):
        wanted.add((*controller, DEFAULT_AUDIENCE))
    return [
        {
            "name": _NAME_UNSAFE.sub("-", f"k8s-{ns}-{account}")[:120],
            "issuer": issuer,
            "subject": f"system:serviceaccount:{ns}:{account}",
            "audience": aud,
        }
        for ns, account, aud in sorted(wanted)
    ]


def fit_condition(count: int) -> tuple[bool, str, str]:
    if count <= MAX_FEDERATED_CREDENTIALS:
        return True, "WithinLimit", f"{count} federated credential(s) needed, at most {MAX_FEDERATED_CREDENTIALS}"
    return (
        False,
        "LimitExceeded",
        f"{count} federated credentials would be needed, but a blueprint holds at most "
        f"{MAX_FEDERATED_CREDENTIALS}: let Pods share service accounts, or split them across blueprints",
    )


@dataclass(frozen=True, slots=True)
class Doomed:
    """What deleting a resource's identity in Entra takes: the blueprint to act as, the policy, the ids."""

    ref: ObjectRef
    blueprint: str
    retain: bool
    given_id: str | None  # spec.clientId: an adopted identity
    recorded_id: str | None  # status.clientId: one the controller created

    @property
    def client_id(self) -> str | None:
        return self.given_id or self.recorded_id


def doomed(identity: AgentIdentity) -> Doomed:
    retain = not identity.spec.managed or identity.spec.deletion_policy == "Retain"
    return Doomed(identity.ref, identity.spec.blueprint, retain, identity.spec.client_id, identity.status.client_id)


def doomed_while_invalid(ref: ObjectRef, raw: Mapping[str, Any]) -> Doomed | None:
    """The same, read from the few fields a deletion takes, of a resource whose spec is invalid otherwise
    (e.g. more than 5 group sponsors, which the CRD schema cannot refuse); None when even those are
    unreadable. It carries our finalizer, so it was managed."""
    spec = raw.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    blueprint, policy = spec.get("blueprint"), spec.get("deletionPolicy") or "Delete"
    if not isinstance(blueprint, str) or not blueprint or policy not in ("Delete", "Retain"):
        return None
    given, recorded = spec.get("clientId"), status_of(raw).get("clientId")
    return Doomed(
        ref,
        blueprint,
        policy == "Retain",
        given if isinstance(given, str) and given else None,
        recorded if isinstance(recorded, str) and recorded else None,
    )
