"""Uninstalling with kustomize keeps the CRDs and every AgentBlueprint and AgentIdentity.

The CRDs are manifests/crds/, apart from the workloads: `kubectl delete -k manifests/self-managed` (what
`kubectl delete -k` runs: the kustomization built, then deleted) removes the install, never the resources.
Helm's side (crds/ is never deleted) is in test_chart.py.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.go_tools import go_tools
from scripts.render_manifests import CHART
from tests.conftest import Doubles
from tests.doubles.entra import FederatedCredential
from tests.e2e.conftest import CRDS, apply, apply_crds, example_config, opted_in_namespace
from tests.e2e.controlplane import SERVICE_ACCOUNT_ISSUER, ControlPlane
from tests.e2e.test_chart import CRD_NAMES, HELMS, Helm, crds_of, isolating, resource_uids
from tests.e2e.test_controller import (
    SUBJECT,
    Cluster,
    controller,
    creates,
    events,
    get,
    managed,
    resource,
    wait_ready,
)
from tests.e2e.test_injection import eventually
from tests.e2e.test_operations import MANIFESTS, build
from webhook.controller.install import FINALIZER as HOLD
from webhook.controller.reconcile import FINALIZER

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
    assert sorted((d["kind"], d["metadata"]["name"]) for d in crds) == [
        ("ClusterRole", BINDING),  # the controller's, which it needs when the install goes (see below)
        *(("CustomResourceDefinition", name) for name in CRD_NAMES),
    ]
    crds = [d for d in crds if d["kind"] == "CustomResourceDefinition"]
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


# -- the controller when its install or the CRDs go ------------------------------------------------------------

BINDING = "entra-webhook-controller"  # the controller's ClusterRole, ClusterRoleBinding and ServiceAccount


def _held(plane: ControlPlane, name: str, namespace: str) -> list[list[str] | None]:
    """The finalizers of the controller's role, binding and account (None: gone)."""
    held = []
    for kind, where in (("clusterrole", []), ("clusterrolebinding", []), ("serviceaccount", ["-n", namespace])):
        found = plane.kubectl("get", kind, name, *where, "--ignore-not-found", "-o", "json").stdout
        held.append(list(json.loads(found)["metadata"].get("finalizers") or []) if found.strip() else None)
    return held


def _controller_cluster(
    plane: ControlPlane, doubles: Doubles, workdir: Path, namespace: str, name: str = BINDING
) -> Cluster:
    """The installed controller's account, its tokens as its Pod would hold them, and Entra trusting them."""
    token = plane.service_account_token(namespace, name)
    kubeconfig = plane.kubeconfig_for(name, token, workdir / "kubeconfig")
    token_file = workdir / "token"
    token_file.write_text(plane.service_account_token(namespace, name, ["api://AzureADTokenExchange"]))
    jwks = json.loads(plane.kubectl("get", "--raw", "/openid/v1/jwks").stdout)
    doubles.entra.trust_issuer(SERVICE_ACCOUNT_ISSUER, jwks)
    return Cluster(plane, doubles, kubeconfig, token_file, workdir, None)


@dataclass
class Install:
    """One way users install and remove the workloads: kustomize (manifests/) or Helm (the chart)."""

    plane: ControlPlane
    way: str
    helm: Helm | None = None

    @property
    def namespace(self) -> str:
        return SYSTEM if self.way == "kustomize" else f"{self.release}-system"

    @property
    def name(self) -> str:
        return BINDING if self.way == "kustomize" else f"{self.release}-entra-webhook-controller"

    @property
    def release(self) -> str:
        return f"gone{self.way[-1]}"  # one per Helm major: a namespace being deleted takes nothing new

    def apply(self) -> None:
        if self.helm is None:
            apply(self.plane, *isolated(build(self.plane, MANIFESTS)))
            return
        self.plane.kubectl("create", "namespace", self.namespace, check=False)
        self.helm("install", self.release, str(CHART), "-n", self.namespace, *self.helm.options(),
                  *isolating(self.release),
                  "--set", "controller.enabled=true")  # fmt: skip

    def remove(self, again: bool = False) -> None:
        """What the uninstall page says; kubectl waits for what it deletes (a namespace with all in it).
        `again`: whatever is left of it, if anything."""
        ignore = ["--ignore-not-found"] if again else []
        if self.helm is None:
            documents = yaml.safe_dump_all(isolated(build(self.plane, MANIFESTS)))
            self.plane.kubectl("delete", "-f", "-", "--wait=true", "--timeout=120s", *ignore, input=documents)
        else:
            self.helm("uninstall", self.release, "-n", self.namespace, *ignore)


INSTALLS = ["kustomize", "helm-4", "helm-3"]


@pytest.fixture(params=INSTALLS)
def install(request: pytest.FixtureRequest, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[Install]:  # fmt: skip
    helm = None
    if request.param != "kustomize":
        major = int(request.param.removeprefix("helm-"))
        helm = Helm(go_tools(HELMS[request.param]) / "helm", control_plane, tmp_path_factory.mktemp("helm"), major)
    found = Install(control_plane, request.param, helm)
    try:
        yield found
    finally:
        found.remove(again=True)
        for resource, namespace in (("clusterrole", None), ("clusterrolebinding", None),
                                    ("serviceaccount", found.namespace)):  # fmt: skip
            where = ["-n", namespace] if namespace else []
            control_plane.kubectl("patch", resource, found.name, *where, "--type=merge", "-p",
                                  '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
        control_plane.kubectl("delete", "namespace", found.namespace, "--wait=false", check=False)
        if helm is not None:  # kept by Helm; manifests/crds ships kustomize's with the CRDs
            control_plane.kubectl("delete", "clusterrole", found.name, "--ignore-not-found", check=False)


def test_removing_the_install_releases_every_identity_leaves_it_in_entra_and_nothing_waits(
    install: Install, control_plane: ControlPlane, doubles: Doubles, tmp_path_factory: pytest.TempPathFactory,
    record_property: Any,
) -> None:  # fmt: skip
    install.apply()
    workdir = tmp_path_factory.mktemp("uninstall")
    cluster = _controller_cluster(control_plane, doubles, workdir, install.namespace, install.name)
    cluster_subject = f"system:serviceaccount:{install.namespace}:{install.name}"
    with opted_in_namespace(control_plane, "released") as namespace:
        app_id = _blueprint(cluster, namespace, cluster_subject)
        apply(control_plane, managed(cluster, namespace, "kept"))
        flags = ("--install-binding", install.name, "--lease-namespace", install.namespace, "--lease-name",
                 install.name)  # fmt: skip
        with controller(cluster, namespace, *flags) as running:
            made = wait_ready(control_plane, namespace, "kept")
            client_id = made["status"]["clientId"]
            assert made["metadata"]["finalizers"] == [FINALIZER]
            eventually(lambda: _held(control_plane, install.name, install.namespace) == [[HOLD]] * 3)
            before = len(doubles.graph.requests)
            started = time.monotonic()
            install.remove()
            # Gone, but the role: kept (it grants nothing without the binding), and let go.
            eventually(lambda: _held(control_plane, install.name, install.namespace) == [[], None, None], timeout=60)
            record_property("uninstall_seconds", round(time.monotonic() - started, 1))
            assert "released 1 AgentIdentities, each left in Entra" in running.logs()
        kept = get(control_plane, namespace, "kept")
        assert kept is not None
        assert not kept["metadata"].get("finalizers")
        assert kept["status"]["clientId"] == client_id
        (said,) = events(control_plane, namespace, "Released")
        assert said["type"] == "Normal"
        assert f"agent identity {client_id} left in Entra as it is" in said["message"]
        assert [m for m, _ in doubles.graph.requests[before:] if m == "DELETE"] == []
        assert [i.id for i in doubles.graph.of_blueprint(app_id)] == [client_id]
        # Nothing waits on it any more: deleting the resource now is immediate, and Entra keeps the identity.
        control_plane.kubectl("delete", "agentidentity", "kept", "-n", namespace, "--wait=true", "--timeout=20s")
        assert [i.id for i in doubles.graph.of_blueprint(app_id)] == [client_id]


@contextlib.contextmanager
def kustomize_install(
    plane: ControlPlane, doubles: Doubles, workdir: Path, prefix: str
) -> Iterator[tuple[Install, Cluster, str, str]]:
    """The kustomize install, its controller's account, and a namespace with the blueprint "sales" and a managed
    AgentIdentity "kept": (install, cluster, namespace, blueprint app id). Whatever is left goes at the end."""
    kustomize = Install(plane, "kustomize")
    kustomize.apply()
    try:
        cluster = _controller_cluster(plane, doubles, workdir, SYSTEM)
        with opted_in_namespace(plane, prefix) as namespace:
            app_id = _blueprint(cluster, namespace, SUBJECT)
            apply(plane, managed(cluster, namespace, "kept"))
            yield kustomize, cluster, namespace, app_id
    finally:
        kustomize.remove(again=True)


def test_reinstalled_the_controller_holds_the_identity_again_without_creating_another(
    control_plane: ControlPlane, doubles: Doubles, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("again")
    with kustomize_install(control_plane, doubles, workdir, "again") as (kustomize, cluster, namespace, _):
        flags = ("--install-binding", BINDING)
        with controller(cluster, namespace, *flags):
            client_id = wait_ready(control_plane, namespace, "kept")["status"]["clientId"]
            kustomize.remove()
        assert not (get(control_plane, namespace, "kept") or {})["metadata"].get("finalizers")
        kustomize.apply()
        again = _controller_cluster(control_plane, doubles, tmp_path_factory.mktemp("again"), SYSTEM)
        before = len(doubles.graph.requests)
        with controller(again, namespace, *flags):
            eventually(lambda: (get(control_plane, namespace, "kept") or {})["metadata"].get("finalizers"))
            assert wait_ready(control_plane, namespace, "kept")["status"]["clientId"] == client_id
            kustomize.remove()  # and again: nothing is left holding the namespace
        assert creates(again, before) == 0
        assert not (get(control_plane, namespace, "kept") or {})["metadata"].get("finalizers")


def test_deleting_the_crds_with_the_controller_running_releases_every_identity_and_deletes_nothing_in_entra(
    control_plane: ControlPlane, doubles: Doubles, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("crds")
    with kustomize_install(control_plane, doubles, workdir, "crds") as (_, cluster, namespace, app_id):
        with controller(cluster, namespace, "--install-binding", BINDING):
            client_id = wait_ready(control_plane, namespace, "kept")["status"]["clientId"]
            before = len(doubles.graph.requests)
            try:
                # `kubectl delete -k manifests/crds`: every blueprint and identity goes with the CRDs.
                control_plane.kubectl("delete", "-f", "-", "--wait=false",
                                      input=yaml.safe_dump_all(build(control_plane, CRDS)))  # fmt: skip
                eventually(lambda: get(control_plane, namespace, "kept") is None, timeout=30)  # released, so gone
                # The CRDs then wait for every AgentIdentity in the cluster, also earlier tests' ones held by
                # controllers that have stopped (each watches its own namespace): nothing this test can judge.
            finally:
                apply_crds(control_plane)
        said = events(control_plane, namespace, "Released")  # by the CRD's deletion or the role's, first
        assert said
        assert all(f"agent identity {client_id} left in Entra as it is" in e["message"] for e in said)
        assert [m for m, _ in doubles.graph.requests[before:] if m == "DELETE"] == []
        assert [i.id for i in doubles.graph.of_blueprint(app_id)] == [client_id]


def _blueprint(cluster: Cluster, namespace: str, subject: str) -> str:
    """The workload-identity blueprint "sales", whose federated credential trusts this controller's account."""
    tenant, app_id = cluster.doubles.blueprint()
    cluster.doubles.entra.add_federated_credential(app_id, FederatedCredential("ctl", SERVICE_ACCOUNT_ISSUER, subject))
    spec = {"tenantId": tenant, "clientId": app_id, "credential": {"workloadIdentity": {}}}
    apply(cluster.plane, resource("AgentBlueprint", namespace, "sales", spec))
    return app_id
