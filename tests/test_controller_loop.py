"""The controller's loop without a cluster: what it writes, and when, as the watches deliver lists."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

import pytest

from webhook.common.models import AgentBlueprint
from webhook.controller.failure import Failure, Retry
from webhook.controller.loop import Controller
from webhook.controller.readiness import ACCESS_DENIED
from webhook.controller.settings import ControllerSettings
from webhook.controller.status import StatusWriter

ISSUER = "https://issuer.example/cluster"
BLUEPRINT: dict[str, Any] = {
    "metadata": {"namespace": "agents", "name": "sales", "generation": 1, "resourceVersion": "5"},
    "spec": {
        "tenantId": "7a1c2f0e-4b5d-4c3e-9f00-123456789abc",
        "clientId": "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a",
        "credential": {"workloadIdentity": {}},
    },
}
IDENTITY: dict[str, Any] = {
    "metadata": {"namespace": "agents", "name": "sales-agent", "generation": 1, "resourceVersion": "6"},
    "spec": {
        "blueprint": "sales",
        "clientId": "f3897825-fd03-45f5-90eb-fdbf26135650",
        "serviceAccounts": ["sales-agent", "sales-worker"],
    },
}


class RecordingKube:
    def __init__(self) -> None:
        self.patched: list[tuple[str, str, str, dict[str, Any]]] = []
        self.events: list[tuple[str, str, bool]] = []

    def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        assert resource_version is not None  # written only over the version the news was judged on
        self.patched.append((kind, namespace, name, status))
        return {"status": status}

    def event(self, raw: dict[str, Any], kind: str, reason: str, message: str, warning: bool) -> None:
        del raw, kind
        self.events.append((reason, message, warning))


class Credentials:
    """What reading a client-secret blueprint's Secret finds: the Secrets that exist and the ones granted."""

    def __init__(self, secrets: dict[str, dict[str, str]], granted: set[str]) -> None:
        self.secrets, self.granted = secrets, granted

    def secret_problem(self, blueprint: AgentBlueprint) -> Failure | None:
        reference = blueprint.spec.credential.client_secret if blueprint.spec.credential else None
        assert reference is not None
        name = reference.secret_name
        if name not in self.granted:
            return Failure(ACCESS_DENIED, f'the controller may not read Secret "{name}"')
        if name not in self.secrets:
            return Failure("SecretNotFound", f'Secret "{name}" does not exist: create it')
        if reference.key not in self.secrets[name]:
            return Failure("SecretKeyNotFound", f'Secret "{name}" has no key "{reference.key}"')
        return None


class Provisioner:
    controller_account = ("entra-system", "entra-webhook-controller")

    def __init__(self, kube: RecordingKube, credentials: Credentials | None = None) -> None:
        self.status = StatusWriter(kube, lambda: dt.datetime(2026, 11, 26, tzinfo=dt.UTC))
        self.credentials = credentials or Credentials({}, set())


def controller(kube: RecordingKube, credentials: Credentials | None = None) -> Controller:
    settings = ControllerSettings(issuer=ISSUER)
    provisioner = Provisioner(kube, credentials)
    return Controller(None, settings, provisioner, kube)  # type: ignore[arg-type]  # never started


def conditions(status: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c["reason"]) for c in status["conditions"]]


def test_a_blueprint_status_waits_for_the_identities_to_be_listed_and_is_then_written_whole() -> None:
    kube = RecordingKube()
    loop = controller(kube)
    loop._on_list("AgentBlueprint", [BLUEPRINT])  # what the blueprints' watch does once it has listed
    key = loop.queue.get(threading.Event())
    assert key == ("AgentBlueprint", "agents", "sales")
    assert loop._handle(key) == "IdentitiesNotListed"
    loop.queue.done(key)
    assert kube.patched == []  # no "no credentials needed" written in between

    loop._on_list("AgentIdentity", [IDENTITY])
    queued = {loop.queue.get(threading.Event()) for _ in range(2)}
    assert queued == {("AgentBlueprint", "agents", "sales"), ("AgentIdentity", "agents", "sales-agent")}
    assert loop._handle(("AgentBlueprint", "agents", "sales")) == "Resolved"
    ((kind, namespace, name, status),) = kube.patched
    assert (kind, namespace, name) == ("AgentBlueprint", "agents", "sales")
    assert [(c["subject"], c["issuer"]) for c in status["federatedCredentials"]] == [
        ("system:serviceaccount:agents:sales-agent", ISSUER),
        ("system:serviceaccount:agents:sales-worker", ISSUER),
    ]
    assert conditions(status) == [("Ready", "True", "Resolved"), ("FederatedCredentialsFit", "True", "WithinLimit")]


def test_a_blueprint_that_no_identity_uses_is_queued_again_once_the_identities_are_listed() -> None:
    kube = RecordingKube()
    loop = controller(kube)
    loop._on_list("AgentBlueprint", [BLUEPRINT])
    key = loop.queue.get(threading.Event())
    assert key is not None
    assert loop._handle(key) == "IdentitiesNotListed"
    loop.queue.done(key)
    loop._on_list("AgentIdentity", [])
    assert loop.queue.get(threading.Event()) == ("AgentBlueprint", "agents", "sales")
    assert loop._handle(("AgentBlueprint", "agents", "sales")) == "Resolved"
    ((_, _, _, status),) = kube.patched
    assert status["federatedCredentials"] == []


def secret_blueprint(name: str = "sales", key: str = "secret") -> dict[str, Any]:
    credential = {"clientSecret": {"secretName": f"{name}-secret", "key": key}}
    return BLUEPRINT | {"metadata": BLUEPRINT["metadata"] | {"name": name}, "spec": BLUEPRINT["spec"] | {
        "credential": credential}}  # fmt: skip


def blueprint_ready(loop: Controller, kube: RecordingKube, name: str = "sales") -> dict[str, Any]:
    with contextlib.suppress(Retry):  # a Secret not usable yet is read again (test_..._read_again_...)
        loop._handle(("AgentBlueprint", "agents", name))
    ((_, _, found, status),) = [p for p in kube.patched if p[2] == name]
    assert found == name
    (ready,) = [c for c in status["conditions"] if c["type"] == "Ready"]
    return dict(ready)


def listed(loop: Controller, blueprints: list[dict[str, Any]], identities: list[dict[str, Any]]) -> None:
    loop._on_list("AgentBlueprint", blueprints)
    loop._on_list("AgentIdentity", identities)


def test_a_client_secret_blueprint_whose_secret_is_missing_is_not_ready_and_says_so_in_a_warning() -> None:
    kube = RecordingKube()
    loop = controller(kube, Credentials({}, {"sales-secret"}))
    listed(loop, [secret_blueprint()], [])
    ready = blueprint_ready(loop, kube)
    assert (ready["status"], ready["reason"]) == ("False", "SecretNotFound")
    assert 'Secret "sales-secret" does not exist: create it' in ready["message"]
    assert kube.events == [("SecretNotFound", ready["message"], True)]


def test_a_secret_not_usable_yet_is_read_again_with_the_backoff_until_it_is() -> None:
    """No watch says when a Secret is created (the controller may not list Secrets): the pass asks for a retry,
    also when the condition already says so, and the Secret read once it is there makes the blueprint Ready."""
    kube = RecordingKube()
    credentials = Credentials({}, {"sales-secret"})
    loop = controller(kube, credentials)
    listed(loop, [secret_blueprint()], [])
    with pytest.raises(Retry) as retried:
        loop._handle(("AgentBlueprint", "agents", "sales"))
    assert (retried.value.reason, retried.value.after) == ("SecretNotFound", None)
    ((_, _, _, status),) = kube.patched
    loop._event("AgentBlueprint", "MODIFIED", secret_blueprint() | {"status": status})
    with pytest.raises(Retry):  # written already: not again, but still read again
        loop._handle(("AgentBlueprint", "agents", "sales"))
    assert len(kube.patched) == 1
    credentials.secrets["sales-secret"] = {"secret": "s"}
    assert loop._handle(("AgentBlueprint", "agents", "sales")) == "Resolved"
    assert conditions(kube.patched[-1][3])[0] == ("Ready", "True", "Resolved")


def test_a_secret_the_controller_need_not_read_asks_for_no_retry() -> None:
    kube = RecordingKube()
    loop = controller(kube, Credentials({}, set()))
    listed(loop, [secret_blueprint()], [])
    assert loop._handle(("AgentBlueprint", "agents", "sales")) == "Resolved"


def test_a_client_secret_blueprint_without_its_key_is_not_ready() -> None:
    kube = RecordingKube()
    loop = controller(kube, Credentials({"sales-secret": {"other": "x"}}, {"sales-secret"}))
    listed(loop, [secret_blueprint()], [])
    assert blueprint_ready(loop, kube)["reason"] == "SecretKeyNotFound"


def test_a_secret_the_controller_may_not_read_blocks_only_a_blueprint_a_managed_identity_needs() -> None:
    sponsor = {"kind": "User", "id": IDENTITY["spec"]["clientId"]}
    managed = {
        "metadata": {"namespace": "agents", "name": "made", "generation": 1, "resourceVersion": "8"},
        "spec": {"blueprint": "made", "sponsors": [sponsor]},
    }
    kube = RecordingKube()
    loop = controller(kube, Credentials({}, set()))
    listed(loop, [secret_blueprint("sales"), secret_blueprint("made")], [managed])
    unread = blueprint_ready(loop, kube, "sales")
    assert (unread["status"], unread["reason"]) == ("True", "Resolved")
    assert "not read" in unread["message"]
    needed = blueprint_ready(loop, kube, "made")
    assert (needed["status"], needed["reason"]) == ("False", ACCESS_DENIED)


def test_an_invalid_blueprint_is_not_ready_and_names_the_field() -> None:
    invalid = BLUEPRINT | {"spec": BLUEPRINT["spec"] | {"tenantId": "not-a-guid"}}
    kube = RecordingKube()
    loop = controller(kube)
    listed(loop, [invalid], [])
    ready = blueprint_ready(loop, kube)
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "tenantId" in ready["message"]


def test_a_blueprint_status_that_holds_is_not_written_again() -> None:
    kube = RecordingKube()
    loop = controller(kube, Credentials({"sales-secret": {"secret": "s"}}, {"sales-secret"}))
    listed(loop, [secret_blueprint()], [])
    ready = blueprint_ready(loop, kube)
    assert (ready["status"], ready["reason"]) == ("True", "Resolved")
    ((_, _, _, status),) = kube.patched
    loop._event("AgentBlueprint", "MODIFIED", secret_blueprint() | {"status": status})
    assert loop._handle(("AgentBlueprint", "agents", "sales")) == "Resolved"
    assert len(kube.patched) == 1


def test_an_identity_waits_for_the_blueprints_to_be_listed_and_is_queued_again_once_they_are() -> None:
    kube = RecordingKube()
    loop = controller(kube)
    loop._on_list("AgentIdentity", [IDENTITY])  # the identities' watch listed first
    queued = {loop.queue.get(threading.Event()) for _ in range(2)}
    assert queued == {("AgentBlueprint", "agents", "sales"), ("AgentIdentity", "agents", "sales-agent")}
    loop.queue.done(("AgentBlueprint", "agents", "sales"))
    key = ("AgentIdentity", "agents", "sales-agent")
    assert loop._handle(key) == "BlueprintsNotListed"  # never "BlueprintNotFound" from a cache not filled yet
    loop.queue.done(key)
    assert kube.patched == []
    loop._on_list("AgentBlueprint", [])
    assert loop.queue.get(threading.Event()) == ("AgentIdentity", "agents", "sales-agent")
