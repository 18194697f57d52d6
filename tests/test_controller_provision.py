"""One pass of the provisioner with a recording cluster and a recording Graph, on a fixed clock: what it
writes, in which order, and what it never calls."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.conftest import resource
from webhook.common.models import AgentBlueprint, ConfigObject, parse_object
from webhook.controller import reconcile
from webhook.controller.credentials import Session
from webhook.controller.entra import EntraIdentity, GraphError
from webhook.controller.failure import Retry
from webhook.controller.provision import Provisioner
from webhook.controller.settings import ControllerSettings

APP = "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a"
USER = "0b5e1c2d-3f4a-4b6c-8d7e-9f0a1b2c3d4e"
MADE = "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
MARKER = "entra-webhook:kubernetes:uid-1"
Json = dict[str, Any]


class Cluster:
    """The API server's answers to the provisioner's writes (merge patches), recorded."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, Json, str | None]] = []  # (what, patch, resourceVersion guarded on)
        self.events: list[tuple[str, str, bool]] = []
        self.version = 10
        self.current: Json = {}  # the resource as the API server has it
        self.crd_deleting = False

    def identity_crd_deleting(self) -> bool:
        return self.crd_deleting

    def patch_status(self, kind: str, namespace: str, name: str, status: Json, version: str | None = None) -> Json:
        del kind, namespace, name
        self.writes.append(("status", status, version))
        self.version += 1
        kept = dict(self.current.get("status") or {}) | status
        self.current = {**self.current, "status": {k: v for k, v in kept.items() if v is not None},
                        "metadata": {**self.current["metadata"], "resourceVersion": str(self.version)}}  # fmt: skip
        return copy.deepcopy(self.current)

    def set_finalizers(self, raw: Json, finalizers: list[str]) -> Json:
        self.writes.append(("finalizers", {"finalizers": finalizers}, raw["metadata"]["resourceVersion"]))
        self.version += 1
        self.current = {**raw, "metadata": {**raw["metadata"], "finalizers": finalizers,
                                            "resourceVersion": str(self.version)}}  # fmt: skip
        return copy.deepcopy(self.current)

    def event(self, raw: Json, kind: str, reason: str, message: str, warning: bool) -> None:
        del raw, kind
        self.events.append((reason, message, warning))

    def read(self, kind: str, namespace: str, name: str) -> Json:
        del kind, namespace, name
        self.writes.append(("read", {}, None))
        return copy.deepcopy(self.current)


class Blueprint:
    """The blueprint's Graph calls: what it was asked, and what it answers."""

    def __init__(self, lose_create: bool = False, existing: EntraIdentity | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.lose_create = lose_create
        self.existing = existing

    def create(self, body: Json) -> EntraIdentity:
        self.calls.append(("create", body))
        if self.lose_create:
            raise GraphError(0, "TransportError", "ReadTimeout: timed out", outcome_unknown=True)
        return EntraIdentity(MADE, MADE, body["displayName"], APP, tuple(body["tags"]), "2026-01-02T03:04:05Z")

    def get(self, object_id: str) -> EntraIdentity | None:
        self.calls.append(("get", object_id))
        return self.existing if self.existing and self.existing.id == object_id else None

    def update(self, object_id: str, patch: Json) -> None:
        self.calls.append(("update", (object_id, patch)))

    def delete(self, object_id: str) -> bool:
        self.calls.append(("delete", object_id))
        return True


class Credentials:
    """The blueprint's credential only: no directory app."""

    controller_account = ("entra-system", "entra-webhook-controller")

    def __init__(self, blueprint: Blueprint) -> None:
        self.blueprint = blueprint

    def session(self, namespace: str, name: str, blueprint_of: Any) -> Session:
        found = blueprint_of(namespace, name)
        assert isinstance(found, AgentBlueprint)
        return Session(found, APP, self.blueprint, None)  # type: ignore[arg-type]


def identity(status: Json | None = None, **metadata: Any) -> Json:
    raw = resource("AgentIdentity", "sales-agent", {"blueprint": "sales", "sponsors": [{"kind": "User", "id": USER}]})
    raw["metadata"] |= {"uid": "uid-1", "resourceVersion": "10", "generation": 1,
                        "finalizers": [reconcile.FINALIZER]} | metadata  # fmt: skip
    return raw | ({"status": status} if status else {})


def blueprint_of(namespace: str, name: str) -> ConfigObject | None:
    spec = {"tenantId": APP, "clientId": APP, "credential": {"workloadIdentity": {}}}
    return parse_object(resource("AgentBlueprint", name, spec, namespace))


def provisioner(cluster: Cluster, blueprint: Blueprint) -> Provisioner:
    return Provisioner(cluster, Credentials(blueprint), ControllerSettings(), now=lambda: NOW)  # type: ignore[arg-type]


def test_a_new_identity_records_its_intent_guarded_then_creates_once_and_records_the_id() -> None:
    cluster, graph = Cluster(), Blueprint()
    raw = identity()
    cluster.current = raw
    before = copy.deepcopy(raw)
    assert provisioner(cluster, graph).reconcile(raw, blueprint_of) == "Provisioned"
    assert raw == before  # the resource handed in is never edited: each write's answer replaces it
    (intent, recorded) = cluster.writes
    assert intent == ("status", {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "Creating", "message": f"creating the agent identity in "
             f"Entra (marker {MARKER})", "observedGeneration": 1, "lastTransitionTime": "2026-01-02T03:04:05Z"},
            {"type": "Synced", "status": "False", "reason": "Creating", "message": f"creating the agent identity in "
             f"Entra (marker {MARKER})", "observedGeneration": 1, "lastTransitionTime": "2026-01-02T03:04:05Z"},
        ],
        "pendingCreate": {"marker": MARKER, "since": "2026-01-02T03:04:05Z"},
    }, "10")  # fmt: skip
    assert [name for name, _ in graph.calls] == ["create"]
    assert graph.calls[0][1]["tags"] == [MARKER, reconcile.sponsors_tag([USER])]
    what, status, guard = recorded
    assert (what, status["clientId"], status["pendingCreate"], guard) == ("status", MADE, None, None)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Ready", "True", "Provisioned"), ("Synced", "True", "Provisioned"),
    ]  # fmt: skip
    assert cluster.events == [("Provisioned", f"agent identity {MADE} (agents/sales-agent) exists in Entra under "
                                              f"blueprint {APP}", False)]  # fmt: skip


def test_a_create_whose_answer_is_lost_keeps_its_intent_and_says_it_will_not_create_again() -> None:
    cluster, graph = Cluster(), Blueprint(lose_create=True)
    cluster.current = identity()
    with pytest.raises(Retry) as retry:
        provisioner(cluster, graph).reconcile(identity(), blueprint_of)
    assert retry.value.reason == "TransportError"
    assert cluster.current["status"]["pendingCreate"] == {"marker": MARKER, "since": "2026-01-02T03:04:05Z"}
    ready = reconcile.condition_of(cluster.current["status"])
    assert ready["message"].endswith(
        "the identity may have been created anyway: the controller does not create again until you say (the next "
        "condition says how)"
    )


def test_a_blueprint_alone_never_creates_again_over_an_unresolved_intent_and_says_how_to_look() -> None:
    cluster, graph = Cluster(), Blueprint()
    pending = {"pendingCreate": {"marker": MARKER, "since": "2026-01-01T00:00:00Z"}}
    cluster.current = identity(pending)
    with pytest.raises(Retry) as retry:
        provisioner(cluster, graph).reconcile(identity(pending), blueprint_of)
    assert retry.value.reason == "CreateUnconfirmed"
    assert graph.calls == []  # no create, and nothing a blueprint may not call
    (read, (what, status, guard)) = cluster.writes
    assert read[0] == "read"  # the intent is still there: not a watch cache that was behind
    assert (what, guard) == ("status", "10")  # and written only over that version
    ready = reconcile.condition_of(status)
    assert (ready["status"], ready["reason"]) == ("False", "CreateUnconfirmed")
    assert f"a create sent at 2026-01-01T00:00:00Z (marker tag {MARKER}) was lost" in ready["message"]
    ((reason, message, warning),) = cluster.events
    assert (reason, message, warning) == ("CreateUnconfirmed", ready["message"], True)


def test_a_deletion_over_an_unresolved_intent_holds_the_finalizer_and_says_how_to_look() -> None:
    cluster, graph = Cluster(), Blueprint()
    pending = {"pendingCreate": {"marker": MARKER, "since": "2026-01-01T00:00:00Z"}}
    deleted = identity(pending, deletionTimestamp="2026-01-02T00:00:00Z")
    cluster.current = deleted
    with pytest.raises(Retry) as retry:
        provisioner(cluster, graph).reconcile(deleted, blueprint_of)
    assert retry.value.reason == "DeleteUnconfirmed"
    assert graph.calls == []
    assert [what for what, _, _ in cluster.writes] == ["read", "status"]  # the finalizer stays
    ready = reconcile.condition_of(cluster.current["status"])
    assert "so that it is deleted too" in ready["message"]
    assert (
        'kubectl patch agentidentity sales-agent -n agents --type=merge -p \'{"spec":{"deletionPolicy":"Retain"}}\''
        in (ready["message"])
    )


def test_a_recorded_id_is_deleted_by_the_blueprint_and_the_finalizer_released() -> None:
    cluster, graph = Cluster(), Blueprint()
    deleted = identity({"clientId": MADE}, deletionTimestamp="2026-01-02T00:00:00Z")
    cluster.current = deleted
    assert provisioner(cluster, graph).reconcile(deleted, blueprint_of) == "Deleted"
    assert graph.calls == [("delete", MADE)]
    assert cluster.writes == [("finalizers", {"finalizers": []}, "10")]


def test_an_intent_read_from_a_cache_that_was_behind_is_not_reported_but_the_pass_runs_again_on_the_fresh_copy() -> (
    None
):
    made = EntraIdentity(MADE, MADE, "agents/sales-agent", APP, (MARKER, reconcile.sponsors_tag([USER])), "")
    cluster, graph = Cluster(), Blueprint(existing=made)
    pending = {"pendingCreate": {"marker": MARKER, "since": "2026-01-01T00:00:00Z"}}
    behind = identity(pending)  # what the watch cache still holds
    cluster.current = identity({"clientId": MADE}, resourceVersion="12")  # the write that recorded the id since
    assert provisioner(cluster, graph).reconcile(behind, blueprint_of) == "Provisioned"
    assert cluster.events == [("Provisioned", f"agent identity {MADE} (agents/sales-agent) exists in Entra under "
                                              f"blueprint {APP}", False)]  # fmt: skip  # never CreateUnconfirmed
    assert [what for what, _, _ in cluster.writes] == ["read", "status"]


class Directory:
    """A directory app granted AgentIdentity.ReadWrite.All: what it lists, and the sponsors it reads."""

    def __init__(self, listed: list[EntraIdentity]) -> None:
        self.listed = listed
        self.calls: list[tuple[str, Any]] = []

    def marked(self, blueprint_app_id: str, tags: list[str]) -> list[EntraIdentity]:
        self.calls.append(("list", (blueprint_app_id, tags)))
        return [found for found in self.listed if set(tags) & set(found.tags)]

    def sponsors(self, object_id: str) -> list[str]:
        self.calls.append(("list sponsors", object_id))
        return [USER]


class WithDirectory(Credentials):
    def __init__(self, blueprint: Blueprint, directory: Directory) -> None:
        super().__init__(blueprint)
        self.directory = directory

    def session(self, namespace: str, name: str, blueprint_of: Any) -> Session:
        return Session(super().session(namespace, name, blueprint_of).blueprint, APP, self.blueprint,  # type: ignore[arg-type]
                       self.directory)  # type: ignore[arg-type]  # fmt: skip


def test_with_the_directory_app_a_second_identity_carrying_the_marker_is_deleted_and_said_so() -> None:
    tags = (MARKER, reconcile.sponsors_tag([USER]))
    made = EntraIdentity(MADE, MADE, "agents/sales-agent", APP, tags, "2026-01-02T03:04:05Z")
    late = EntraIdentity("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                         "agents/sales-agent", APP, tags, "2026-01-02T03:09:05Z")  # fmt: skip
    cluster, graph, directory = Cluster(), Blueprint(existing=made), Directory([made, late])
    ready = {"clientId": MADE, "conditions": [
        {"type": t, "status": "True", "reason": "Provisioned", "observedGeneration": 1, "lastTransitionTime": "x",
         "message": f"agent identity {MADE} (agents/sales-agent) exists in Entra under blueprint {APP}"}
        for t in ("Ready", "Synced")
    ]}  # fmt: skip
    cluster.current = identity(ready)
    works = Provisioner(cluster, WithDirectory(graph, directory), ControllerSettings(), now=lambda: NOW)  # type: ignore[arg-type]
    assert works.reconcile(identity(ready), blueprint_of) == "Provisioned"
    assert graph.calls == [("get", MADE), ("delete", late.id)]
    assert directory.calls == [("list", (APP, [MARKER])), ("list sponsors", MADE)]
    ((reason, message, warning),) = cluster.events
    assert (reason, warning) == ("DuplicateDeleted", True)
    assert message.startswith(f"deleted agent identity {late.id}, a second one carrying this resource's marker")
    assert cluster.writes == []  # nothing else to write: Ready and Synced hold


# -- identities the controller does not manage: Ready only ------------------------------------------


def referencing(blueprint: str = "sales", status: Json | None = None) -> Json:
    raw = resource("AgentIdentity", "sales-agent", {"blueprint": blueprint, "clientId": MADE})
    raw["metadata"] |= {"uid": "uid-2", "resourceVersion": "10", "generation": 1}
    return raw | ({"status": status} if status else {})


def resolved(cluster: Cluster, raw: Json, ready_of: Any = lambda *_: {}) -> str:
    cluster.current = raw
    graph = Blueprint()
    outcome = provisioner(cluster, graph).reconcile(raw, blueprint_of, ready_of)
    assert graph.calls == []  # nothing in Entra is read or changed for an identity it does not manage
    return outcome


def test_an_unmanaged_identity_whose_blueprint_resolves_is_ready_and_names_its_client_id() -> None:
    cluster = Cluster()
    assert resolved(cluster, referencing()) == "Resolved"
    ((what, patch, guarded),) = cluster.writes
    assert (what, guarded) == ("status", "10")
    (ready,) = patch["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Resolved")
    assert MADE in ready["message"]
    assert cluster.events == []  # only what is wrong is news worth an Event


def test_an_unmanaged_identity_naming_a_missing_blueprint_is_not_ready_and_says_create_it() -> None:
    cluster = Cluster()
    raw = referencing("missing")
    cluster.current = raw
    outcome = provisioner(cluster, Blueprint()).reconcile(raw, lambda *_: None)
    assert outcome == "BlueprintNotFound"
    ((_, patch, _),) = cluster.writes
    (ready,) = patch["conditions"]
    assert ready["status"] == "False"
    assert 'has no AgentBlueprint "missing": create it, or fix spec.blueprint' in ready["message"]
    assert cluster.events[0][0] == "BlueprintNotFound"
    assert cluster.events[0][2] is True


def test_an_unmanaged_identity_follows_its_blueprint_when_that_is_not_ready() -> None:
    cluster = Cluster()
    said = {"type": "Ready", "status": "False", "reason": "SecretNotFound", "message": 'Secret "s" does not exist'}
    assert resolved(cluster, referencing(), lambda *_: said) == "BlueprintNotReady"
    ((_, patch, _),) = cluster.writes
    assert (
        'AgentBlueprint "sales" is not ready (SecretNotFound): Secret "s" does not exist'
        in (patch["conditions"][0]["message"])
    )


def test_a_ready_condition_that_holds_is_not_written_again_and_a_synced_one_left_from_management_goes() -> None:
    cluster = Cluster()
    assert resolved(cluster, referencing()) == "Resolved"
    held = cluster.current
    assert resolved(cluster, held) == "Resolved"
    assert len(cluster.writes) == 1
    synced = {"type": "Synced", "status": "True", "reason": "Provisioned", "message": "m"}
    left = held | {"status": {"conditions": [*held["status"]["conditions"], synced]}}
    resolved(cluster, left)
    assert [c["type"] for c in cluster.current["status"]["conditions"]] == ["Ready"]


def test_an_invalid_identity_the_controller_never_managed_is_reported_once_and_not_retried() -> None:
    cluster = Cluster()
    raw = resource("AgentIdentity", "sales-agent", {"blueprint": "sales"})
    raw["metadata"] |= {"uid": "uid-3", "resourceVersion": "10", "generation": 1}
    assert resolved(cluster, raw) == "InvalidSpec"
    ((_, patch, _),) = cluster.writes
    assert [c["type"] for c in patch["conditions"]] == ["Ready"]
    assert "spec.clientId" in patch["conditions"][0]["message"]


# -- the install or the CRDs going -------------------------------------------------------------------------


def deleted(**metadata: Any) -> Json:
    return identity({"clientId": MADE}, deletionTimestamp="2026-01-02T00:00:00Z", **metadata)


def test_an_identity_deleted_with_its_crd_is_released_and_nothing_in_entra_is_called() -> None:
    cluster = Cluster()
    cluster.crd_deleting = True
    raw = deleted()
    cluster.current = raw
    graph = Blueprint()
    assert provisioner(cluster, graph).reconcile(raw, blueprint_of) == "Released"
    assert graph.calls == []
    assert cluster.writes == [("finalizers", {"finalizers": []}, "10")]
    ((reason, message, warning),) = cluster.events
    assert (reason, warning) == ("Released", True)
    assert message.startswith("the AgentIdentity CRD is being deleted (which deletes every AgentIdentity): finalizer "
                              f"released, agent identity {MADE} left in Entra as it is")  # fmt: skip


def test_an_identity_deleted_on_its_own_still_follows_its_deletion_policy() -> None:
    cluster = Cluster()
    raw = deleted()
    cluster.current = raw
    graph = Blueprint()
    provisioner(cluster, graph).reconcile(raw, blueprint_of)
    assert ("delete", MADE) in graph.calls


def test_released_on_uninstall_the_finalizer_goes_with_an_event_and_a_conflict_is_read_again() -> None:
    class Conflicting(Cluster):
        conflicts = 1

        def set_finalizers(self, raw: Json, finalizers: list[str]) -> Json:
            if self.conflicts:
                self.conflicts -= 1
                raise ApiException(status=409)
            return super().set_finalizers(raw, finalizers)

    cluster = Conflicting()
    raw = identity({"clientId": MADE})
    cluster.current = raw | {"metadata": raw["metadata"] | {"resourceVersion": "12"}}
    assert provisioner(cluster, Blueprint()).release(raw, "the controller's install is being removed") is True
    assert cluster.writes == [("read", {}, None), ("finalizers", {"finalizers": []}, "12")]
    ((reason, message, warning),) = cluster.events
    assert (reason, warning) == ("Released", False)
    assert message.startswith("the controller's install is being removed: finalizer released")
    assert provisioner(cluster, Blueprint()).release(cluster.current, "again") is False  # not held any more


def test_a_second_pass_on_a_stale_copy_of_an_identity_deleted_with_its_crd_says_nothing_again() -> None:
    class Stale(Cluster):
        def set_finalizers(self, raw: Json, finalizers: list[str]) -> Json:
            del raw, finalizers
            raise ApiException(status=409)  # released already by the first pass

    cluster = Stale()
    cluster.crd_deleting = True
    raw = deleted()
    cluster.current = raw
    with pytest.raises(ApiException):
        provisioner(cluster, Blueprint()).reconcile(raw, blueprint_of)
    assert cluster.events == []
