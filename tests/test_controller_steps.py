"""What one pass over an AgentIdentity does and reports, decided from its arguments and a fixed clock."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import subprocess
from typing import Any

import pytest

from tests.conftest import resource
from webhook.common.models import AgentIdentity, ObjectRef, parse_object
from webhook.controller import advice, reconcile, steps
from webhook.controller.failure import Failure
from webhook.controller.graph import EntraIdentity, GraphError

USER = "0b5e1c2d-3f4a-4b6c-8d7e-9f0a1b2c3d4e"
APP = "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a"
ID = "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b"
GRAPH = "https://graph.microsoft.com/v1.0"
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
TAG = "entra-webhook:c:u"
WINDOW = 210.0
SPONSORS = [{"kind": "User", "id": USER}]


def raw(spec: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    merged = {"blueprint": "sales", "sponsors": SPONSORS} | (spec or {})
    found = resource("AgentIdentity", "sales-agent", {k: v for k, v in merged.items() if v is not None})
    found["metadata"] |= {"uid": "u", "resourceVersion": "7", "generation": 2} | metadata
    return found


def identity(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> AgentIdentity:
    parsed = parse_object(raw(spec) | ({"status": status} if status else {}))
    assert isinstance(parsed, AgentIdentity), parsed
    return parsed


def ready(since: dt.datetime, status: str = "True") -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": status, "reason": "Provisioned", "message": "m",
                            "lastTransitionTime": since.strftime(reconcile.TIME_FORMAT)}]}  # fmt: skip


# -- the first step ------------------------------------------------------------------------------


def test_a_new_managed_identity_gets_the_finalizer_first() -> None:
    step = steps.first_step(raw(finalizers=["other"]))
    assert isinstance(step, steps.Provision)
    assert step.finalizers == ["other", reconcile.FINALIZER]
    again = steps.first_step(raw(finalizers=[reconcile.FINALIZER]))
    assert isinstance(again, steps.Provision)
    assert again.finalizers is None


def test_a_deleted_managed_identity_is_released_after_its_deletion_in_entra() -> None:
    step = steps.first_step(
        raw({}, finalizers=["other", reconcile.FINALIZER], deletionTimestamp="2026-01-02T00:00:00Z")
    )
    assert step == steps.Release(["other"], reconcile.Doomed(ObjectRef("AgentIdentity", "agents", "sales-agent"),
                                                             "sales", False, None, None))  # fmt: skip


def test_an_identity_no_longer_managed_is_released_and_left_in_entra() -> None:
    step = steps.first_step(raw({"sponsors": None, "clientId": ID}, finalizers=[reconcile.FINALIZER]))
    assert step == steps.Release([], None)


def test_identities_never_ours_are_skipped() -> None:
    assert steps.first_step(raw({"sponsors": None, "clientId": ID})) == steps.Skip("Unmanaged")
    assert steps.first_step(raw({"sponsors": None})) == steps.Skip("Invalid")


def test_an_invalid_identity_of_ours_is_reported_and_released_when_deleted() -> None:
    invalid = {"sponsors": [{"kind": "Group", "id": USER.replace("0b", f"{n}b")} for n in range(6)]}
    step = steps.first_step(raw(invalid, finalizers=[reconcile.FINALIZER]))
    assert isinstance(step, steps.ReportInvalid)
    assert "at most 5 sponsors may be groups" in step.message
    deleted = steps.first_step(raw(invalid | {"blueprint": None}, finalizers=[reconcile.FINALIZER],
                                   deletionTimestamp="2026-01-02T00:00:00Z"))  # fmt: skip
    assert isinstance(deleted, steps.Release)
    assert deleted.doomed is None
    assert "left as it is" in deleted.warning


# -- what Graph answered ---------------------------------------------------------------------------


def test_a_missing_identity_right_after_its_create_is_waited_for_then_reported() -> None:
    created = identity(status={"clientId": ID})
    fresh = ready(NOW - dt.timedelta(seconds=10))
    assert steps.missing(created, ID, fresh, NOW, replication=180) == ""
    stale = ready(NOW - dt.timedelta(seconds=181))
    assert steps.missing(created, ID, stale, NOW, replication=180).startswith(
        f"agent identity {ID} (status.clientId) does not exist in Entra: restore it within 30 days"
    )
    adopted = identity({"clientId": ID})
    assert "give the id of an existing one" in steps.missing(adopted, ID, fresh, NOW, replication=180)


def test_an_identity_of_another_blueprint_is_named() -> None:
    mine = EntraIdentity(ID, ID, "n", APP, (), "")
    assert steps.not_of_blueprint(mine, APP.upper(), "sales") == ""
    theirs = EntraIdentity(ID, ID, "n", "someone-else", (), "")
    assert steps.not_of_blueprint(theirs, APP, "sales").startswith(f"agent identity {ID} belongs to blueprint someone-")


def test_provisioned_is_ready_and_synced_unless_sponsors_could_not_be_applied() -> None:
    current = EntraIdentity(ID, ID, "agents/sales-agent", APP, (TAG,), "")
    ready_, synced = steps.provisioned(identity(), current, APP, reconcile.Changes({}, (), ()), None, GRAPH)
    assert (ready_.reason, ready_.status, synced.reason, synced.status) == ("Provisioned", True, "Provisioned", True)
    assert ready_.message == f"agent identity {ID} (agents/sales-agent) exists in Entra under blueprint {APP}"
    unsynced = reconcile.Changes({}, (), (), sponsors_unsynced=True)
    ready_, synced = steps.provisioned(identity(), current, APP, unsynced, None, GRAPH)
    assert (ready_.status, synced.status, synced.reason) == (True, False, "SponsorsNotSynced")
    assert "AgentIdentity.ReadWrite.All, which a blueprint cannot hold" in synced.message
    recording = synced.message.split("then record that: ", 1)[1]
    tags = [TAG, reconcile.sponsors_tag([USER])]
    assert shlex.split(recording) == [
        "az", "rest", "--method", "patch", "--url", f"{GRAPH}/servicePrincipals/{ID}/microsoft.graph.agentIdentity",
        "--headers", "OData-Version=4.0", "--body", json.dumps({"tags": tags}, separators=(",", ":")),
    ]  # fmt: skip  # the sponsors tag of the spec's sponsors, once an admin set them by hand
    refused = "Graph answered 403 Authorization_RequestDenied to list sponsors as directory app d"
    _, synced = steps.provisioned(identity({"clientId": ID}), current, APP, reconcile.Changes({}, (), ()), refused,
                                  GRAPH)  # fmt: skip
    assert (synced.status, synced.reason) == (False, "SponsorsNotSynced")
    assert refused in synced.message


def test_a_failure_leaves_a_usable_identity_ready_unless_it_makes_it_unusable() -> None:
    usable = ready(NOW) | {"clientId": ID}
    assert [(w.type, w.status) for w in steps.failed(usable, identity(), "TransportError", "m", False)] == [
        ("Synced", False)
    ]
    assert [(w.type, w.status) for w in steps.failed(usable, identity(), "NotFoundInEntra", "m", True)] == [
        ("Ready", False), ("Synced", False),
    ]  # fmt: skip
    never = steps.failed({}, identity(), "SecretAccessDenied", "m", False)
    assert [(w.type, w.reason) for w in never] == [("Ready", "SecretAccessDenied"), ("Synced", "SecretAccessDenied")]


def test_only_a_refused_read_of_the_identity_makes_it_unusable() -> None:
    def denied(operation: str, caller: str) -> GraphError:
        error = GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        error.operation, error.caller = operation, caller
        return error

    assert Failure.of_graph(denied("get", f"blueprint {APP}")).unusable
    assert not Failure.of_graph(denied("list sponsors", "directory app d")).unusable
    assert not Failure.of_graph(GraphError(0, "TransportError", "x", outcome_unknown=True)).unusable


# -- a deletion ----------------------------------------------------------------------------------


def doomed(client_id: str | None = None, given: str | None = None) -> reconcile.Doomed:
    return reconcile.Doomed(ObjectRef("AgentIdentity", "agents", "sales-agent"), "sales", False, given, client_id)


def listed(object_id: str, *tags: str) -> EntraIdentity:
    return EntraIdentity(object_id, object_id, "n", APP, tags, "2026-01-01T00:00:00Z")


def test_without_a_list_the_recorded_id_is_deleted_and_a_lost_create_cannot_be_found() -> None:
    assert reconcile.deletion_step(doomed(ID), None, None, TAG, NOW, WINDOW) == reconcile.Delete((ID,))
    intent = reconcile.Intent(TAG, NOW - dt.timedelta(seconds=5))
    assert reconcile.deletion_step(doomed(ID), intent, None, TAG, NOW, WINDOW) == reconcile.Delete((ID,))
    assert reconcile.deletion_step(doomed(), intent, None, TAG, NOW, WINDOW) == reconcile.Unresolved(intent)
    assert reconcile.deletion_step(doomed(), None, None, TAG, NOW, WINDOW) == reconcile.Delete(())


def test_with_a_list_what_carries_the_marker_is_deleted_too_once_it_shows() -> None:
    intent = reconcile.Intent(TAG, NOW - dt.timedelta(seconds=5))
    step = reconcile.deletion_step(doomed(), intent, [listed("x", "other")], TAG, NOW, WINDOW)
    assert isinstance(step, reconcile.Wait)
    assert step.until == intent.since + dt.timedelta(seconds=WINDOW)
    leftover = listed("b-left-behind", TAG)
    assert reconcile.deletion_step(doomed(ID), intent, [leftover], TAG, NOW, WINDOW) == reconcile.Delete(
        (ID, "b-left-behind")
    )
    late = NOW + dt.timedelta(seconds=WINDOW)
    assert reconcile.deletion_step(doomed(), intent, [], TAG, late, WINDOW) == reconcile.Delete(())


# -- the words -------------------------------------------------------------------------------------


def test_a_refusal_names_the_operation_the_caller_the_permission_and_the_fix() -> None:
    error = GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    error.operation, error.caller = "list sponsors", "directory app d"
    assert advice.refusal(error) == (
        "Graph answered 403 Authorization_RequestDenied to list sponsors as directory app d: list sponsors needs "
        "AgentIdentity.ReadWrite.All, which a blueprint cannot hold (the directory app's); grant the directory "
        "app AgentIdentity.ReadWrite.All (admin consent; docs/security/entra-permissions.md)"
    )
    error.operation, error.caller = "get", f"blueprint {APP}"
    assert advice.refusal(error).endswith(
        "get needs AgentIdentity.CreateAsManager (a blueprint, for the identities it made) or AgentIdentity.Read.All; "
        "a blueprint manages only the agent identities it created under its own app id: name one of those"
    )
    other = GraphError(400, "AgentIdentity_LimitExceeded", "limit")
    other.operation, other.caller = "create", f"blueprint {APP}"
    assert advice.refusal(other).startswith(
        f"Graph answered 400 AgentIdentity_LimitExceeded to create as blueprint {APP}"
    )


def as_shell_passes_it(command: str) -> list[str]:
    """The arguments bash hands to `az` for this command line (pasted as it is)."""
    shown = subprocess.run(["bash", "-c", 'az() { printf "%s\\0" "$@"; }; ' + command], capture_output=True,
                           text=True, check=True)  # fmt: skip
    return shown.stdout.split("\0")[:-1]


@pytest.mark.parametrize("deleting", [False, True])
def test_an_unconfirmed_create_names_the_marker_and_the_exact_commands(deleting: bool) -> None:
    ref = ObjectRef("AgentIdentity", "agents", "sales-agent")
    message = advice.unconfirmed(ref, GRAPH, TAG, "2026-01-02T03:04:05Z", deleting)
    assert f"(marker tag {TAG})" in message
    assert "a blueprint may not list agent identities (AgentIdentity.Read.All)" in message
    find = message.split("Find it: ", 1)[1].split("; if found", 1)[0]
    assert as_shell_passes_it(find) == [
        "rest", "--method", "get", "--url",
        f"{GRAPH}/servicePrincipals/microsoft.graph.agentIdentity?$filter=tags/any(t:t eq '{TAG}')"
        "&$select=id,displayName,agentIdentityBlueprintId,createdDateTime",
    ]  # fmt: skip
    record = message.split("record its id ", 1)[1].split(": ", 1)[1]
    assert shlex.split(record.split("; if not", 1)[0])[-1] == '{"status":{"clientId":"ID","pendingCreate":null}}'
    assert "kubectl patch agentidentity sales-agent -n agents --subresource=status --type=merge -p" in record
    assert message.count("--subresource=status") == 2
    assert ("deletionPolicy" in message) is deleting
    assert len(message) < reconcile.MESSAGE_LIMIT
