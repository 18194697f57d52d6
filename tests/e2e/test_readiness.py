"""A `Ready` condition on what the controller does not provision, against the real API server.

An AgentIdentity naming an existing agent identity (`spec.clientId`, no sponsors) and every
AgentBlueprint get one, with the reason and the fix, and a Warning Event when something is wrong;
the controller makes no call to Entra for either. Runs with the fixtures (and both modes) of
test_controller.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.e2e.conftest import apply
from tests.e2e.controlplane import ControlPlane
from tests.e2e.test_controller import (
    ACCOUNT,
    SYSTEM,
    Cluster,
    blueprint,
    cluster,
    controller,
    namespace,
    ready,
    resource,
    wait_blueprint,
    wait_ready,
    wait_reason,
)
from tests.e2e.test_injection import eventually

__all__ = ["cluster", "namespace"]  # the controller tests' fixtures (both modes), used here as there


def events_on(plane: ControlPlane, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    items = json.loads(plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e for e in items if (e["involvedObject"]["kind"], e["involvedObject"]["name"]) == (kind, name)]


def one_event(plane: ControlPlane, namespace: str, kind: str, name: str, reason: str) -> dict[str, Any]:
    (found,) = eventually(lambda: [e for e in events_on(plane, namespace, kind, name) if e["reason"] == reason])
    return dict(found)


def columns(plane: ControlPlane, namespace: str, *names: str) -> list[str]:
    """These columns of `kubectl get agentblueprint billing -o wide` (the CRD's printer columns)."""
    shown = plane.kubectl("get", "agentblueprint", "billing", "-n", namespace, "-o", "wide").stdout
    header, row = shown.split("\n")[:2]
    return [row[header.index(f" {name} ") + 1 :].split()[0] for name in names]


def test_an_identity_naming_a_missing_blueprint_says_so_and_is_ready_once_it_exists_without_calling_entra(
    cluster: Cluster, namespace: str
) -> None:
    plane, doubles = cluster.plane, cluster.doubles
    client_id = str(uuid.uuid4())
    apply(plane, resource("AgentIdentity", namespace, "billing", {"blueprint": "billing", "clientId": client_id}))
    calls, tokens = len(doubles.graph.requests), len(doubles.entra.issued)
    with controller(cluster, namespace):
        missing = wait_reason(plane, namespace, "billing", "BlueprintNotFound")
        assert missing["status"] == "False"
        assert missing["message"] == (
            f'namespace "{namespace}" has no AgentBlueprint "billing": create it, or fix spec.blueprint; '
            "Pods naming it are denied until then"
        )
        event = one_event(plane, namespace, "AgentIdentity", "billing", "BlueprintNotFound")
        assert (event["type"], event["message"]) == ("Warning", missing["message"])

        tenant, app_id = doubles.blueprint()
        spec = {"tenantId": tenant, "clientId": app_id, "credential": {"workloadIdentity": {}}}
        apply(plane, resource("AgentBlueprint", namespace, "billing", spec))
        found = wait_ready(plane, namespace, "billing")
        resolved = ready(plane, namespace, "billing")
        assert resolved is not None
        assert resolved["reason"] == "Resolved"
        assert client_id in resolved["message"]
        assert [c["type"] for c in found["status"]["conditions"]] == ["Ready"]  # nothing to sync: not managed
        assert "finalizers" not in found["metadata"]
        assert "clientId" not in found["status"]
        assert wait_blueprint(plane, namespace, "billing", "Resolved")["status"] == "True"
    assert doubles.graph.requests[calls:] == []  # neither Graph nor the token endpoint: nothing to provision
    assert doubles.entra.issued[tokens:] == []


def secret(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "billing-blueprint", "namespace": namespace},
            "stringData": data}  # fmt: skip


def granted(namespace: str) -> list[dict[str, Any]]:
    """The Role and RoleBinding docs/concepts/controller.md has an admin apply: get on this one Secret."""
    name = "entra-controller-billing-blueprint"
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["billing-blueprint"],
                       "verbs": ["get"]}]}  # fmt: skip
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": name, "namespace": namespace},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
               "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": SYSTEM}]}  # fmt: skip
    return [role, binding]


def test_a_client_secret_blueprint_says_its_secret_or_key_is_missing_until_both_are_there(
    cluster: Cluster, namespace: str
) -> None:
    plane, doubles = cluster.plane, cluster.doubles
    tenant, app_id = doubles.blueprint(secret="billing-secret-value")
    spec = {"tenantId": tenant, "clientId": app_id,
            "credential": {"clientSecret": {"secretName": "billing-blueprint", "key": "client-secret"}}}  # fmt: skip
    apply(plane, *granted(namespace), resource("AgentBlueprint", namespace, "billing", spec))
    calls, tokens = len(doubles.graph.requests), len(doubles.entra.issued)
    with controller(cluster, namespace) as running:
        missing = wait_blueprint(plane, namespace, "billing", "SecretNotFound")
        assert missing["status"] == "False"
        assert missing["message"] == (
            f'Secret "billing-blueprint" in namespace "{namespace}" does not exist: create it with the blueprint\'s '
            f"client secret: kubectl create secret generic billing-blueprint -n {namespace} "
            "--from-literal=client-secret=..."
        )
        assert columns(plane, namespace, "READY", "REASON") == ["False", "SecretNotFound"]
        event = one_event(plane, namespace, "AgentBlueprint", "billing", "SecretNotFound")
        assert (event["type"], event["message"]) == ("Warning", missing["message"])

        apply(plane, secret(namespace, {"other": "x"}))  # no watch on Secrets: read again with the backoff
        no_key = wait_blueprint(plane, namespace, "billing", "SecretKeyNotFound")
        assert no_key["status"] == "False"
        assert no_key["message"] == (
            f'Secret "billing-blueprint" in namespace "{namespace}" has no key "client-secret" '
            "(it has: 'other'): "
            'add it, or fix spec.credential.clientSecret.key of AgentBlueprint "billing"'
        )
        assert one_event(plane, namespace, "AgentBlueprint", "billing", "SecretKeyNotFound")["type"] == "Warning"

        plane.kubectl("delete", "secret", "billing-blueprint", "-n", namespace)
        apply(plane, secret(namespace, {"client-secret": "billing-secret-value"}))
        there = wait_blueprint(plane, namespace, "billing", "Resolved")
        assert there["status"] == "True"
        assert columns(plane, namespace, "READY", "REASON") == ["True", "Resolved"]
        assert there["message"] == 'client secret: key "client-secret" of Secret "billing-blueprint", which is there'
        shown = json.dumps(
            [blueprint(plane, namespace, "billing"), events_on(plane, namespace, "AgentBlueprint", "billing")]
        )
        assert "billing-secret-value" not in shown + running.logs()
    assert doubles.graph.requests[calls:] == []  # the Secret is read, never used: no identity to provision
    assert doubles.entra.issued[tokens:] == []
