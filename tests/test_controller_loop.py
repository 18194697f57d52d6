"""The controller's loop without a cluster: what it writes, and when, as the watches deliver lists."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from webhook.controller.loop import Controller
from webhook.controller.settings import ControllerSettings
from webhook.controller.status import StatusWriter

ISSUER = "https://issuer.example/cluster"
BLUEPRINT = {
    "metadata": {"namespace": "agents", "name": "sales", "generation": 1},
    "spec": {
        "tenantId": "7a1c2f0e-4b5d-4c3e-9f00-123456789abc",
        "clientId": "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a",
        "credential": {"workloadIdentity": {}},
    },
}
IDENTITY = {
    "metadata": {"namespace": "agents", "name": "sales-agent", "generation": 1},
    "spec": {
        "blueprint": "sales",
        "clientId": "f3897825-fd03-45f5-90eb-fdbf26135650",
        "serviceAccounts": ["sales-agent", "sales-worker"],
    },
}


class RecordingKube:
    def __init__(self) -> None:
        self.patched: list[tuple[str, str, str, dict[str, Any]]] = []

    def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        assert resource_version is None  # a blueprint's status is written whole, unguarded
        self.patched.append((kind, namespace, name, status))
        return {"status": status}

    def event(self, raw: dict[str, Any], kind: str, reason: str, message: str, warning: bool) -> None:
        del raw, kind, reason, message, warning


class Provisioner:
    controller_account = ("entra-system", "entra-webhook-controller")

    def __init__(self, kube: RecordingKube) -> None:
        self.status = StatusWriter(kube, lambda: dt.datetime(2026, 11, 26, tzinfo=dt.UTC))


def controller(kube: RecordingKube) -> Controller:
    settings = ControllerSettings(issuer=ISSUER)
    return Controller(None, settings, Provisioner(kube), kube)  # type: ignore[arg-type]  # never started


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
    assert loop._handle(("AgentBlueprint", "agents", "sales")) == "WithinLimit"
    ((kind, namespace, name, status),) = kube.patched
    assert (kind, namespace, name) == ("AgentBlueprint", "agents", "sales")
    assert [(c["subject"], c["issuer"]) for c in status["federatedCredentials"]] == [
        ("system:serviceaccount:agents:sales-agent", ISSUER),
        ("system:serviceaccount:agents:sales-worker", ISSUER),
    ]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("FederatedCredentialsFit", "True", "WithinLimit"),
    ]


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
    assert loop._handle(("AgentBlueprint", "agents", "sales")) == "WithinLimit"
    ((_, _, _, status),) = kube.patched
    assert status["federatedCredentials"] == []
