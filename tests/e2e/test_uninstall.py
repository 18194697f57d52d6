"""Uninstalling with kustomize keeps the CRDs and every AgentBlueprint and AgentIdentity.

The CRDs are manifests/crds/, apart from the workloads: `kubectl delete -k manifests/self-managed` (what
`kubectl delete -k` runs: the kustomization built, then deleted) removes the install, never the resources.
Helm's side (crds/ is never deleted) is in test_chart.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e.conftest import CRDS, apply, example_config
from tests.e2e.controlplane import ControlPlane
from tests.e2e.test_chart import CRD_NAMES, crds_of, resource_uids
from tests.e2e.test_injection import eventually
from tests.e2e.test_operations import MANIFESTS, build

SYSTEM = "entra-system"
TEST_LABEL = "entra-uninstall-test"


def isolated(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The install as built, but its webhooks select only namespaces carrying this test's label: the control plane
    is shared, and a stored configuration whose Service has no endpoints would fail other tests' Pods."""
    for document in documents:
        if document["kind"] == "MutatingWebhookConfiguration":
            for entry in document["webhooks"]:
                entry["namespaceSelector"].setdefault("matchLabels", {})[TEST_LABEL] = "yes"
    return documents


@pytest.mark.parametrize("overlay", ["", "self-managed"])
def test_deleting_the_kustomize_install_keeps_the_crds_and_every_blueprint_and_identity(
    control_plane: ControlPlane, overlay: str
) -> None:
    crds = build(control_plane, CRDS)
    assert sorted(d["metadata"]["name"] for d in crds) == sorted(CRD_NAMES)
    install = build(control_plane, MANIFESTS / overlay)
    assert not [d for d in install if d["kind"] == "CustomResourceDefinition"]
    namespace = f"keep-{overlay or 'secret'}"
    apply(control_plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    apply(control_plane, *example_config(namespace))
    resources = resource_uids(control_plane, namespace)
    definitions = {crd["metadata"]["uid"] for crd in crds_of(control_plane)}
    apply(control_plane, *isolated(install))
    try:
        stored = control_plane.kubectl("get", "-f", "-", "-o", "name", input=yaml.safe_dump_all(install))
        assert len(stored.stdout.split()) == len(install)
    finally:
        # `kubectl delete -k manifests/OVERLAY`: the kustomization as built, deleted.
        control_plane.kubectl("delete", "-f", "-", "--wait=true", "--timeout=120s", input=yaml.safe_dump_all(install))
        eventually(lambda: _namespace_gone(control_plane), timeout=120)  # with everything in it
    assert {crd["metadata"]["uid"] for crd in crds_of(control_plane)} == definitions
    for crd in crds_of(control_plane):
        established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
        assert established[0]["status"] == "True"
    assert resource_uids(control_plane, namespace) == resources
    control_plane.kubectl("delete", "namespace", namespace, "--wait=false")


def _namespace_gone(plane: ControlPlane) -> bool:
    return plane.kubectl("get", "namespace", SYSTEM, "--ignore-not-found", "-o", "name").stdout == ""
