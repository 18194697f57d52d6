"""The controller's decisions, from their arguments alone: bodies, diffs, conditions, advice."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from tests.conftest import resource
from webhook.common.models import AgentBlueprint, AgentIdentity, ObjectRef, parse_object
from webhook.controller import advice, reconcile
from webhook.controller.graph import EntraIdentity
from webhook.controller.loop import WorkQueue

USER = "0b5e1c2d-3f4a-4b6c-8d7e-9f0a1b2c3d4e"
GROUP = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
APP = "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a"
GRAPH = "https://graph.microsoft.com/v1.0"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def identity(**spec: Any) -> AgentIdentity:
    parsed = parse_object(resource("AgentIdentity", "sales-agent", {"blueprint": "sales", **spec}))
    assert isinstance(parsed, AgentIdentity), parsed
    return parsed


def blueprint(credential: dict[str, Any]) -> AgentBlueprint:
    spec = {"tenantId": APP, "clientId": APP, "credential": credential}
    parsed = parse_object(resource("AgentBlueprint", "sales", spec))
    assert isinstance(parsed, AgentBlueprint), parsed
    return parsed


def test_a_create_body_names_the_blueprint_sponsors_and_marker() -> None:
    managed = identity(sponsors=[{"kind": "User", "id": USER}, {"kind": "Group", "id": GROUP}])
    assert reconcile.create_body(managed, APP, "entra-webhook:prod:uid-1", GRAPH) == {
        "displayName": "agents/sales-agent",
        "agentIdentityBlueprintId": APP,
        "sponsors@odata.bind": [f"{GRAPH}/users/{USER}", f"{GRAPH}/groups/{GROUP}"],
        "tags": ["entra-webhook:prod:uid-1", reconcile.sponsors_tag([USER, GROUP])],
    }


def test_the_sponsors_tag_depends_on_the_set_of_sponsor_ids_only() -> None:
    tag = reconcile.sponsors_tag([USER, GROUP])
    assert tag.startswith("entra-webhook-sponsors:")
    assert len(tag) == len("entra-webhook-sponsors:") + 16
    assert tag == reconcile.sponsors_tag([GROUP.upper(), USER, USER])
    assert tag != reconcile.sponsors_tag([USER])
    assert not tag.startswith(reconcile.MARKER_PREFIX)  # never read as a marker


def test_the_marker_names_the_cluster_and_the_resource_uid() -> None:
    assert reconcile.marker("prod-eu", "5f0c") == "entra-webhook:prod-eu:5f0c"


def entra(object_id: str, *tags: str, name: str = "agents/sales-agent", created: str = "2026-01-01T00:00:00Z",
          blueprint_id: str = APP) -> EntraIdentity:  # fmt: skip
    return EntraIdentity(object_id, object_id, name, blueprint_id, tags, created)


def test_the_oldest_marked_object_is_the_one_found() -> None:
    objects = [
        entra("b", "entra-webhook:c:u", created="2026-01-02T00:00:00Z"),
        entra("a", "other"),
        entra("c", "entra-webhook:c:u"),
    ]
    assert [found.id for found in reconcile.find_marked(objects, "entra-webhook:c:u")] == ["c", "b"]


TAG = "entra-webhook:c:u"
WINDOW = 210.0


def marked(object_id: str, *tags: str) -> EntraIdentity:
    return entra(object_id, *tags)


def test_without_an_intent_or_a_marked_identity_the_step_is_to_create() -> None:
    assert reconcile.create_step(None, [marked("other", "team")], TAG, NOW, WINDOW) == reconcile.Create()


def test_without_an_intent_a_marked_identity_is_found() -> None:
    found = marked("ours", "team", TAG)
    assert reconcile.create_step(None, [marked("other"), found], TAG, NOW, WINDOW) == reconcile.Found(found)


def test_an_intent_whose_identity_is_listed_finds_it() -> None:
    intent = reconcile.Intent(TAG, NOW - dt.timedelta(seconds=5))
    found = marked("ours", TAG)
    assert reconcile.create_step(intent, [found], TAG, NOW, WINDOW) == reconcile.Found(found)


def test_an_intent_is_found_by_its_own_marker_after_the_cluster_name_changed() -> None:
    intent = reconcile.Intent("entra-webhook:old-name:u", NOW - dt.timedelta(seconds=5))
    found = marked("ours", "entra-webhook:old-name:u")
    assert reconcile.create_step(intent, [found], TAG, NOW, WINDOW) == reconcile.Found(found)


def test_an_intent_not_listed_within_the_window_is_waited_for() -> None:
    intent = reconcile.Intent(TAG, NOW - dt.timedelta(seconds=10))
    step = reconcile.create_step(intent, [marked("other", "team")], TAG, NOW, WINDOW)
    assert step == reconcile.Wait(intent, 5.0, intent.since + dt.timedelta(seconds=WINDOW))


def test_an_intent_not_listed_after_the_window_is_taken_never_to_have_happened() -> None:
    intent = reconcile.Intent(TAG, NOW - dt.timedelta(seconds=WINDOW))
    assert reconcile.create_step(intent, [], TAG, NOW, WINDOW) == reconcile.Create(expired=intent)


def test_while_waiting_lists_are_spaced_out_but_never_past_the_window() -> None:
    def recheck(elapsed: float) -> float:
        step = reconcile.create_step(reconcile.Intent(TAG, NOW - dt.timedelta(seconds=elapsed)), [], TAG, NOW, WINDOW)
        assert isinstance(step, reconcile.Wait)
        return step.recheck

    assert [recheck(elapsed) for elapsed in (0, 1, 4, 40, 100, 200, 209.5)] == [1.0, 1.0, 2.0, 20.0, 30.0, 10.0, 0.5]
    future = reconcile.Intent(TAG, NOW + dt.timedelta(seconds=30))  # another node's clock runs ahead
    step = reconcile.create_step(future, [], TAG, NOW, WINDOW)
    assert step == reconcile.Wait(future, 1.0, future.since + dt.timedelta(seconds=WINDOW))


def test_without_a_list_no_intent_means_create_and_an_intent_cannot_be_resolved() -> None:
    assert reconcile.create_step(None, None, TAG, NOW, WINDOW) == reconcile.Create()
    intent = reconcile.Intent(TAG, NOW - dt.timedelta(days=3))  # however old: never created again blindly
    assert reconcile.create_step(intent, None, TAG, NOW, WINDOW) == reconcile.Unresolved(intent)


def test_an_intent_is_written_and_read_back_and_a_malformed_one_is_none() -> None:
    written = reconcile.intent_status(TAG, NOW)
    assert written == {"marker": TAG, "since": "2026-01-02T03:04:05Z"}
    assert reconcile.intent_of({"pendingCreate": written}) == reconcile.Intent(TAG, NOW)
    for malformed in (None, "x", {"marker": TAG}, {"marker": "other", "since": written["since"]},
                      {"marker": TAG, "since": "yesterday"}):  # fmt: skip
        assert reconcile.intent_of({"pendingCreate": malformed}) is None
    assert reconcile.intent_of({}) is None


def test_changes_cover_display_name_marker_and_sponsors_adds_first() -> None:
    managed = identity(displayName="Sales agent", sponsors=[{"kind": "Group", "id": GROUP}])
    current = entra("x", "team", reconcile.sponsors_tag([USER]))
    changes = reconcile.changes(current, [USER.upper()], managed, "entra-webhook:c:u", GRAPH)
    assert changes.patch == {
        "displayName": "Sales agent",
        "tags": ["team", "entra-webhook:c:u", reconcile.sponsors_tag([GROUP])],  # written after the sponsors
    }
    assert changes.add == (f"{GRAPH}/groups/{GROUP}",)
    assert changes.remove == (USER,)
    assert not changes.sponsors_unsynced


def test_nothing_changes_when_entra_matches_the_spec() -> None:
    managed = identity(sponsors=[{"kind": "User", "id": USER}])
    current = entra("x", "entra-webhook:c:u", reconcile.sponsors_tag([USER]))
    assert not reconcile.changes(current, [USER], managed, "entra-webhook:c:u", GRAPH)
    assert not reconcile.changes(current, None, managed, "entra-webhook:c:u", GRAPH)


def test_without_reading_sponsors_the_sponsors_tag_tells_a_spec_change_and_nothing_is_done_about_them() -> None:
    as_created = entra("x", "entra-webhook:c:u", reconcile.sponsors_tag([USER]))
    edited = identity(displayName="Sales agent", sponsors=[{"kind": "Group", "id": GROUP}])
    changes = reconcile.changes(as_created, None, edited, "entra-webhook:c:u", GRAPH)
    assert changes.patch == {"displayName": "Sales agent"}  # the sponsors tag stays: Entra's sponsors did not change
    assert (changes.add, changes.remove, changes.sponsors_unsynced) == ((), (), True)
    adopted = entra("x", "team")  # never tagged by the controller: its sponsors are unknown
    changes = reconcile.changes(adopted, None, identity(sponsors=[{"kind": "User", "id": USER}]), "entra-webhook:c:u",
                                GRAPH)  # fmt: skip
    assert (changes.patch, changes.sponsors_unsynced) == ({"tags": ["team", "entra-webhook:c:u"]}, True)


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = reconcile.conditions(None, "Ready", False, "SecretNotFound", "m1", 1, NOW)
    later = reconcile.conditions(first, "Ready", False, "SecretAccessDenied", "m2", 2, NOW + dt.timedelta(minutes=5))
    assert later == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "SecretAccessDenied",
            "message": "m2",
            "observedGeneration": 2,
            "lastTransitionTime": "2026-01-02T03:04:05Z",
        }
    ]
    flipped = reconcile.conditions(later, "Ready", True, "Provisioned", "ok", 2, NOW + dt.timedelta(minutes=9))
    assert flipped[0]["lastTransitionTime"] == "2026-01-02T03:13:05Z"
    assert reconcile.ready_since({"conditions": flipped}) == NOW + dt.timedelta(minutes=9)


def test_a_long_message_is_bounded() -> None:
    (condition,) = reconcile.conditions([], "Ready", False, "X", "y" * 5000, 1, NOW)
    assert len(condition["message"]) == 1000


def test_the_grant_names_one_secret_and_the_controller_s_service_account() -> None:
    commands = advice.grant_commands(ObjectRef("Secret", "agents", "support-blueprint"), ("entra-system", "ctl"))
    assert commands == (
        "kubectl create role entra-controller-support-blueprint -n agents --verb=get --resource=secrets "
        "--resource-name=support-blueprint && kubectl create rolebinding entra-controller-support-blueprint "
        "-n agents --role=entra-controller-support-blueprint --serviceaccount=entra-system:ctl"
    )


def test_every_code_the_docs_name_has_advice() -> None:
    for code in ("AgentIdentity_LimitExceeded", "Error_AgentIdentitySelfCreateRequired",
                 "AgentIdentity_AgentBlueprintPrincipalDoesNotExist"):  # fmt: skip
        assert advice.graph_advice(code) != "see Graph's message"
    assert "purge soft-deleted" in advice.graph_advice("AgentIdentity_LimitExceeded")
    assert "federated credential" in advice.token_advice("AADSTS700213")
    assert "AgentBlueprint's status" in advice.token_advice("AADSTS700213")
    assert "to the directory app" in advice.token_advice("AADSTS700213", directory=True)


def test_federated_credentials_list_each_service_account_and_the_controller() -> None:
    wi = blueprint({"workloadIdentity": {}})
    identities = [
        identity(clientId=USER, serviceAccounts=["web", "worker"]),
        identity(sponsors=[{"kind": "User", "id": USER}], serviceAccounts=["web"]),
    ]
    found = reconcile.federated_credentials(
        wi, identities, "https://issuer", ("entra-system", "entra-webhook-controller")
    )
    assert [c["subject"] for c in found] == [
        "system:serviceaccount:agents:web",
        "system:serviceaccount:agents:worker",
        "system:serviceaccount:entra-system:entra-webhook-controller",
    ]
    assert found[0] == {
        "name": "k8s-agents-web",
        "issuer": "https://issuer",
        "subject": "system:serviceaccount:agents:web",
        "audience": "api://AzureADTokenExchange",
    }


def test_a_client_secret_blueprint_needs_no_federated_credential() -> None:
    secret = blueprint({"clientSecret": {"secretName": "s", "key": "k"}})
    assert reconcile.federated_credentials(secret, [identity(clientId=USER, serviceAccounts=["a"])], "i", None) == []


def test_more_than_20_federated_credentials_do_not_fit() -> None:
    assert reconcile.fit_condition(20)[0] is True
    fits, reason, message = reconcile.fit_condition(21)
    assert (fits, reason) == (False, "LimitExceeded")
    assert message.startswith("21 federated credentials would be needed, but a blueprint holds at most 20")


def test_the_queue_hands_out_due_keys_once_and_never_twice_at_a_time() -> None:
    now = [0.0]
    queue = WorkQueue(clock=lambda: now[0])
    stopping = threading.Event()
    key = ("AgentIdentity", "agents", "a")
    queue.add(key, 5)
    queue.add(key, 1)  # an earlier due time wins
    queue.add(("AgentIdentity", "agents", "b"), 3)
    now[0] = 1.5
    assert queue.get(stopping) == key
    queue.add(key)  # changed while being worked on: held back until done
    now[0] = 3.5
    assert queue.get(stopping) == ("AgentIdentity", "agents", "b")
    assert queue.pending() == 1
    queue.done(key)
    assert queue.get(stopping) == key


def test_a_deletion_reads_the_blueprint_policy_and_ids_of_a_valid_identity() -> None:
    created = identity(sponsors=[{"kind": "User", "id": USER}], deletionPolicy="Delete")
    assert reconcile.doomed(created) == reconcile.Doomed(created.ref, "sales", False, None, None)
    adopted = identity(clientId=APP, sponsors=[{"kind": "User", "id": USER}], deletionPolicy="Retain")
    assert reconcile.doomed(adopted) == reconcile.Doomed(adopted.ref, "sales", True, APP, None)
    assert reconcile.doomed(identity(clientId=APP)).retain  # not managed: never deleted in Entra


def test_a_deletion_of_an_otherwise_invalid_identity_reads_only_the_fields_it_takes() -> None:
    ref = ObjectRef("AgentIdentity", "agents", "orphan")
    raw = {**resource("AgentIdentity", "orphan", {"blueprint": "sales"}), "status": {"clientId": APP}}
    assert reconcile.doomed_while_invalid(ref, raw) == reconcile.Doomed(ref, "sales", False, None, APP)
    kept = {**raw, "spec": {"blueprint": "sales", "deletionPolicy": "Retain"}}
    assert reconcile.doomed_while_invalid(ref, kept) == reconcile.Doomed(ref, "sales", True, None, APP)
    for spec in ({}, {"blueprint": 7}, {"blueprint": "sales", "deletionPolicy": "Sometimes"}):
        assert reconcile.doomed_while_invalid(ref, {**raw, "spec": spec}) is None
