"""What the controller wants, decided without I/O: bodies, diffs, conditions, markers, next steps.

The provisioner (`provision.py`) reads the cluster and Graph and calls these; each answers from
its arguments alone (the clock is an argument too), so every rule here has a unit test without a
server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from webhook.controller.entra import EntraIdentity

Json = dict[str, Any]

FINALIZER = "entra.io/agent-identity"
MARKER_PREFIX = "entra-webhook:"
SPONSORS_PREFIX = "entra-webhook-sponsors:"
PENDING = "pendingCreate"
SYNCED = "Synced"  # Entra is in line with the spec; a failure here leaves a usable identity Ready
RECHECK_MIN, RECHECK_MAX = 1.0, 30.0  # seconds between lists while waiting for a create to show
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_FEDERATED_CREDENTIALS = 20
FEDERATED_FIT = "FederatedCredentialsFit"
MESSAGE_LIMIT = 1000
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def marker(cluster: str, uid: str) -> str:
    """The tag that says "made for this resource in this cluster"; found again before any create."""
    return f"{MARKER_PREFIX}{cluster}:{uid}"


def sponsors_tag(sponsors: Iterable[Sponsor | str]) -> str:
    """The tag that records which sponsors the controller set last: a blueprint may read an identity's tags,
    but not its sponsors, so this is how it tells that the spec changed them since."""
    ids = sorted({(s.id if isinstance(s, Sponsor) else s).lower() for s in sponsors})
    return SPONSORS_PREFIX + hashlib.sha256(",".join(ids).encode()).hexdigest()[:16]


def display_name(identity: AgentIdentity) -> str:
    return identity.spec.display_name or f"{identity.ref.namespace}/{identity.ref.name}"[:256]


def sponsor_reference(sponsor: Sponsor, graph_url: str) -> str:
    collection = "users" if sponsor.kind == "User" else "groups"
    return f"{graph_url.rstrip('/')}/{collection}/{sponsor.id}"


def create_body(identity: AgentIdentity, blueprint_app_id: str, tag: str, graph_url: str) -> Json:
    """Sponsors are bound by the create itself: the one sponsor write a blueprint may make."""
    return {
        "displayName": display_name(identity),
        "agentIdentityBlueprintId": blueprint_app_id,
        "sponsors@odata.bind": [sponsor_reference(sponsor, graph_url) for sponsor in identity.spec.sponsors],
        "tags": [tag, sponsors_tag(identity.spec.sponsors)],
    }


def find_marked(objects: Iterable[EntraIdentity], *tags: str) -> list[EntraIdentity]:
    """Identities carrying one of our markers, oldest first (there is one unless someone copied the tag)."""
    found = [obj for obj in objects if set(tags) & set(obj.tags)]
    return sorted(found, key=lambda obj: (obj.created, obj.id))


def duplicates(listed: Iterable[EntraIdentity], current: EntraIdentity) -> list[EntraIdentity]:
    """Identities carrying the marker besides the one in use (listed by that marker)."""
    return [found for found in listed if found.id != current.id]


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

    identity: EntraIdentity


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


@dataclass(frozen=True)
class Unresolved:
    """A create may have happened and nothing the controller may call can tell: an admin must look."""

    intent: Intent


CreateStep = Found | Create | Wait | Unresolved


def create_step(
    intent: Intent | None, listed: Iterable[EntraIdentity] | None, tag: str, now: dt.datetime, window: float
) -> CreateStep:
    """What to do about an identity with no id on record, from the intent and what Entra lists.

    `listed` is None when nothing may list (a blueprint alone): then an intent cannot be resolved.
    Graph's lists lag its creates (replication), so an intent whose identity is not listed yet is
    waited for, for `window` seconds from when it was recorded, before a second create is risked.
    """
    if listed is None:
        return Create() if intent is None else Unresolved(intent)
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


# -- keeping Entra in line with the spec --------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    patch: Json
    add: tuple[str, ...]  # sponsor references to add
    remove: tuple[str, ...]  # sponsor object ids to remove
    sponsors_unsynced: bool = False  # the spec's sponsors may differ from Entra's, and nothing may tell or fix it

    def __bool__(self) -> bool:
        return bool(self.patch or self.add or self.remove)


def changes(
    current: EntraIdentity, sponsors: Sequence[str] | None, identity: AgentIdentity, tag: str, graph_url: str
) -> Changes:
    """How Entra's object differs from the spec: display name, our marker tag, sponsors.

    `sponsors` is None when they may not be read (a blueprint alone): then the sponsors tag, written
    with the sponsors, says whether the spec changed them since; nothing is changed about them.
    """
    patch: Json = {}
    if current.display_name != display_name(identity):
        patch["displayName"] = display_name(identity)
    wanted_tag = sponsors_tag(identity.spec.sponsors)
    tags = [t for t in current.tags if sponsors is None or not t.startswith(SPONSORS_PREFIX)]
    tags += [] if tag in tags else [tag]
    tags += [] if sponsors is None else [wanted_tag]
    if tags != list(current.tags):
        patch["tags"] = tags
    if sponsors is None:
        return Changes(patch, (), (), sponsors_unsynced=wanted_tag not in current.tags)
    wanted = {sponsor.id: sponsor for sponsor in identity.spec.sponsors}
    have = {sponsor.lower() for sponsor in sponsors}
    add = tuple(sponsor_reference(wanted[i], graph_url) for i in sorted(wanted) if i not in have)
    remove = tuple(sorted(have - set(wanted)))
    return Changes(patch, add, remove)


# -- conditions and the status --------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """A condition as the controller means to write it."""

    type: str
    status: bool
    reason: str
    message: str


def ready_and_synced(status: bool, reason: str, message: str) -> tuple[Wanted, Wanted]:
    return Wanted(READY, status, reason, message), Wanted(SYNCED, status, reason, message)


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


def status_patch(
    status: Mapping[str, Any],
    wanted: Iterable[Wanted],
    generation: int,
    now: dt.datetime,
    extra: Json | None = None,
    drop: str | None = None,
) -> Json:
    """A merge patch of the status setting these conditions (and `extra`, where None deletes a field), without
    the condition of type `drop`."""
    listed: object = status.get("conditions")
    if drop and isinstance(listed, list):
        listed = [c for c in listed if not (isinstance(c, dict) and c.get("type") == drop)]
    for condition in wanted:
        listed = conditions(listed, condition.type, condition.status, condition.reason, condition.message,
                            generation, now)  # fmt: skip
    return {"conditions": listed, **(extra or {})}


def condition_of(status: Mapping[str, Any], kind: str = READY) -> Json:
    """The condition of this type written last, or an empty one."""
    listed = status.get("conditions")
    return (
        next((c for c in listed if isinstance(c, dict) and c.get("type") == kind), {})
        if isinstance(listed, list)
        else {}
    )


def is_news(status: Mapping[str, Any], wanted: Wanted) -> bool:
    """A new reason or message for this condition: worth an Event."""
    old = condition_of(status, wanted.type)
    return (old.get("reason"), old.get("message")) != (wanted.reason, clip(wanted.message, MESSAGE_LIMIT - 1))


def holds(status: Mapping[str, Any], wanted: Iterable[Wanted], generation: int) -> bool:
    """Every one of these conditions is written already, for this generation."""
    return all(
        (c := condition_of(status, w.type)).get("status") == ("True" if w.status else "False")
        and c.get("reason") == w.reason
        and c.get("message") == clip(w.message, MESSAGE_LIMIT - 1)
        and c.get("observedGeneration") == generation
        for w in wanted
    )


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


# -- what a deletion deletes ------------------------------------------------------------------


@dataclass(frozen=True)
class Delete:
    """Delete these ids in Entra (none: nothing was ever created), then release the finalizer."""

    ids: tuple[str, ...]


DeleteStep = Delete | Wait | Unresolved


def deletion_step(
    doomed: Doomed,
    intent: Intent | None,
    listed: Iterable[EntraIdentity] | None,
    tag: str,
    now: dt.datetime,
    window: float,
) -> DeleteStep:
    """The ids to delete: the recorded one, and (when the controller may list) whatever carries this
    resource's marker, which a create whose answer was lost left behind. Without a list, such a create
    cannot be found: an admin must look (`Unresolved`)."""
    ids = {doomed.client_id} if doomed.client_id else set()
    if listed is None:
        if ids or intent is None:
            return Delete(tuple(sorted(ids)))
        return Unresolved(intent)
    listed = list(listed)
    step = create_step(intent, listed, tag, now, window)
    if isinstance(step, Wait) and not ids:
        return step
    ids |= {found.id for found in find_marked(listed, tag, *([intent.marker] if intent else []))}
    return Delete(tuple(sorted(ids)))
