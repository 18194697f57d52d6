"""The Helm chart on the real API server: install, upgrade, uninstall, and the values it refuses.

Nothing runs (no kubelet): the tests assert on the objects the API server stored. The control plane
is shared with the other e2e tests, which label namespaces and Pods entra.io/inject=enabled, and a
stored webhook configuration whose Service has no endpoints would make their Pods fail. So every
release here selects only namespaces and Pods labelled with its own name (nothing else carries that
label), and is uninstalled when its test ends, whatever happens.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.go_tools import go_tools
from scripts.render_manifests import CHART
from tests.e2e.conftest import CEL_SINCE, apply, apply_crds, example_config
from tests.e2e.controlplane import REPO_ROOT, ControlPlane
from tests.e2e.test_injection import eventually
from tests.servers import make_certs

STAND_IN_CRDS = REPO_ROOT / "tests" / "fixtures" / "stand-in-crds.yaml"
TEST_LABEL = "entra-chart-test"
MODES = ("self-managed", "cert-manager", "secret")
_numbers = itertools.count(1)


@dataclass
class Helm:
    binary: Path
    plane: ControlPlane
    home: Path
    major: int

    def options(self) -> list[str]:
        """What the install docs tell users of this Helm on this server: before Kubernetes 1.25 Helm 4 must not
        server-side apply the CRDs (that server's schema of a CRD has no x-kubernetes-validations, and a
        server-side apply of an unknown field fails; a plain create drops it)."""
        return ["--server-side=false"] if self.major >= 4 and self.plane.version < CEL_SINCE else []

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
        # Helm's own files stay in the test's directory, never in the user's home.
        env |= {f"HELM_{kind}_HOME": str(self.home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}
        command = [str(self.binary), "--kubeconfig", str(self.plane.kubeconfig), *args]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result


@dataclass
class Release:
    name: str
    namespace: str
    helm: Helm

    @property
    def fullname(self) -> str:
        return f"{self.name}-entra-webhook"

    def manifest(self) -> list[dict[str, Any]]:
        """What Helm rendered for the release (`helm get manifest`)."""
        text = self.helm("get", "manifest", self.name, "-n", self.namespace).stdout
        return [d for d in yaml.safe_load_all(text) if d]

    def stored(self) -> list[dict[str, Any]]:
        """The same objects, as the API server stored them."""
        return stored_objects(self.helm.plane, self.manifest())

    def install(self, *values: str) -> None:
        self.helm("install", self.name, str(CHART), "-n", self.namespace, *self.helm.options(), *isolating(self.name),
                  *values)  # fmt: skip

    def upgrade(self, *values: str) -> None:
        self.helm("upgrade", self.name, str(CHART), "-n", self.namespace, *self.helm.options(), *isolating(self.name),
                  *values)  # fmt: skip


def isolating(name: str) -> list[str]:
    """Both webhooks select only what carries this release's label, besides their usual selectors."""
    label = f"{TEST_LABEL}={name}"
    return [
        "--set",
        f"webhook.namespaceSelector.matchLabels.{label}",
        "--set",
        f"webhook.podSelector.matchLabels.{label}",
    ]


def stored_objects(plane: ControlPlane, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = plane.kubectl("get", "-f", "-", "-o", "json", input=yaml.safe_dump_all(documents))
    loaded = json.loads(found.stdout)
    items: list[dict[str, Any]] = loaded.get("items", [loaded])
    return items


def absent(plane: ControlPlane, documents: list[dict[str, Any]]) -> list[str]:
    """The objects among `documents` that the API server no longer has."""
    gone = []
    for document in documents:
        metadata = document["metadata"]
        where = ["-n", metadata["namespace"]] if "namespace" in metadata else []
        kind = ".".join(filter(None, (document["kind"], group_of(document))))
        result = plane.kubectl("get", kind, metadata["name"], *where, check=False)
        if result.returncode != 0 and "NotFound" in result.stderr:
            gone.append(f"{document['kind']}/{metadata['name']}")
    return gone


def group_of(document: dict[str, Any]) -> str:
    api_version: str = document["apiVersion"]
    return api_version.rpartition("/")[0]  # "" for the core group's "v1"


def differences(rendered: Any, stored: Any, path: str = "") -> list[str]:
    """Where `stored` lacks or changed something `rendered` says (the server may add defaults)."""
    if isinstance(rendered, dict):
        if not isinstance(stored, dict):
            return [f"{path}: stored {stored!r}"]
        return [d for key, value in rendered.items() for d in differences(value, stored.get(key), f"{path}.{key}")]
    if isinstance(rendered, list):
        if not isinstance(stored, list) or len(stored) != len(rendered):
            return [f"{path}: stored {stored!r}"]
        if all(isinstance(item, dict) and "name" in item for item in rendered + stored):
            # Lists merged by name (containers, env, volumes, ...): an update may keep the old order.
            named = {item["name"]: item for item in stored}
            return [d for r in rendered for d in differences(r, named.get(r["name"]), f"{path}[{r['name']}]")]
        return [
            d for i, (r, s) in enumerate(zip(rendered, stored, strict=True)) for d in differences(r, s, f"{path}[{i}]")
        ]
    return [] if rendered == stored else [f"{path}: rendered {rendered!r}, stored {stored!r}"]


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        grouped.setdefault(obj["kind"], []).append(obj)
    return grouped


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def assert_stored_as_rendered(release: Release) -> list[dict[str, Any]]:
    rendered = release.manifest()
    stored = stored_objects(release.helm.plane, rendered)
    assert [(o["kind"], o["metadata"]["name"]) for o in stored] == [
        (o["kind"], o["metadata"]["name"]) for o in rendered
    ]
    for want, got in zip(rendered, stored, strict=True):
        assert not differences(want, got), f"{want['kind']}/{want['metadata']['name']}: {differences(want, got)}"
    return stored


@pytest.fixture(scope="module")
def stand_ins(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """The stand-in cert-manager and prometheus-operator CRDs, while the module runs."""
    control_plane.kubectl("apply", "-f", str(STAND_IN_CRDS))
    control_plane.kubectl("wait", "--for=condition=Established", "-f", str(STAND_IN_CRDS), "--timeout=60s")
    try:
        yield control_plane
    finally:
        control_plane.kubectl("delete", "-f", str(STAND_IN_CRDS), "--ignore-not-found", "--wait=false")


# Users run both major lines: Helm 4 (scripts/build/helm, which also renders manifests/) and Helm 3
# (scripts/build/helm3), each pinned in its Go module.
HELMS = {"helm-4": "helm", "helm-3": "helm3"}


@pytest.fixture(scope="module", params=list(HELMS), ids=list(HELMS))
def helm(request: pytest.FixtureRequest, stand_ins: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    major = int(request.param.removeprefix("helm-"))
    return Helm(go_tools(HELMS[request.param]) / "helm", stand_ins, tmp_path_factory.mktemp(request.param), major)


@pytest.fixture
def release(helm: Helm) -> Iterator[Release]:
    """A release name and a namespace of its own; uninstalled, and the namespace deleted, at the end."""
    name = f"chart-{next(_numbers)}"
    namespace = f"{name}-system"
    helm.plane.kubectl("create", "namespace", namespace)
    try:
        yield Release(name, namespace, helm)
    finally:
        helm("uninstall", name, "-n", namespace, "--ignore-not-found", check=False)
        helm.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_chart_lints_clean_in_every_certificate_mode(helm: Helm) -> None:
    for mode in MODES:
        for strict in ([], ["--strict"]):
            result = helm("lint", str(CHART), "--set", f"certificates.mode={mode}", *strict)
            assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
            assert "[WARNING]" not in result.stdout
            assert "[ERROR]" not in result.stdout


def test_install_with_the_defaults_stores_every_object(release: Release, control_plane: ControlPlane) -> None:
    release.install()
    stored = assert_stored_as_rendered(release)
    kinds = by_kind(stored)
    assert {kind: len(objects) for kind, objects in kinds.items()} == {
        "ServiceAccount": 2,  # the webhook's and the controller's
        "Secret": 1,  # the self-managed certificate's, filled by the webhook
        "ClusterRole": 4,
        "ClusterRoleBinding": 4,
        "Role": 2,  # the self-managed certificate's Secret, the controller's Lease
        "RoleBinding": 2,
        "Service": 2,  # the webhook's, and the controller's headless one for scraping
        "Deployment": 2,
        "PodDisruptionBudget": 2,
        "MutatingWebhookConfiguration": 1,
    }
    assert one(stored, "Deployment", f"{release.fullname}-controller")["spec"]["replicas"] == 2
    deployment = one(stored, "Deployment", release.fullname)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["priorityClassName"] == "system-cluster-critical"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "entra-agent-webhook:0.1.0"
    assert "--manage-certs" in container["args"]
    assert f"--webhook-configuration={release.fullname}" in container["args"]
    assert env_of(deployment)["ENTRA_WEBHOOK_SIDECAR_IMAGE"].endswith("auth-sidecar:1.1.2-azurelinux3.0-distroless")
    version = control_plane.version
    for pdb in kinds["PodDisruptionBudget"]:  # the webhook's and the controller's
        assert pdb["apiVersion"] == ("policy/v1" if version >= (1, 21) else "policy/v1beta1")
    hook = one(stored, "MutatingWebhookConfiguration", release.fullname)
    assert [w["name"] for w in hook["webhooks"]] == ["namespace.inject.entra.io", "pod.inject.entra.io"]
    for entry in hook["webhooks"]:
        assert entry["failurePolicy"] == "Fail"
        assert entry["clientConfig"]["service"] == {
            "namespace": release.namespace,
            "name": release.fullname,
            "path": "/mutate",
            "port": 443,
        }
        assert "caBundle" not in entry["clientConfig"]
        assert ("matchConditions" in entry) == (version >= (1, 30))
    secret = one(stored, "Secret", f"{release.fullname}-tls")
    assert "data" not in secret


@pytest.mark.parametrize("mode", ["cert-manager", "secret"])
def test_install_in_each_other_certificate_mode_stores_every_object(
    release: Release, mode: str, tmp_path: Path
) -> None:
    ca = base64.b64encode((make_certs(tmp_path) / "ca.crt").read_bytes()).decode()
    release.install("--set", f"certificates.mode={mode}", "--set", f"certificates.caBundle={ca}")
    stored = assert_stored_as_rendered(release)
    kinds = by_kind(stored)
    assert [role["metadata"]["name"] for role in kinds["Role"]] == [f"{release.fullname}-controller-leader"]
    assert "Secret" not in kinds  # nor the self-managed certificate's Role above
    deployment = one(stored, "Deployment", release.fullname)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--manage-certs" not in container["args"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"] == {"secretName": f"{release.fullname}-tls", "defaultMode": 420}
    hook = one(stored, "MutatingWebhookConfiguration", release.fullname)
    if mode == "cert-manager":
        assert sorted(
            (o["kind"], o["metadata"]["name"]) for o in stored if o["apiVersion"] == "cert-manager.io/v1"
        ) == [
            ("Certificate", f"{release.fullname}-ca"),
            ("Certificate", f"{release.fullname}-tls"),
            ("Issuer", f"{release.fullname}-ca"),
            ("Issuer", f"{release.fullname}-selfsigned"),
        ]
        serving = one(stored, "Certificate", f"{release.fullname}-tls")
        assert serving["spec"]["dnsNames"] == [
            f"{release.fullname}.{release.namespace}.svc",
            f"{release.fullname}.{release.namespace}.svc.cluster.local",
        ]
        assert serving["spec"]["issuerRef"] == {"kind": "Issuer", "name": f"{release.fullname}-ca"}
        injected_from = f"{release.namespace}/{release.fullname}-tls"
        assert hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == injected_from
        assert all("caBundle" not in w["clientConfig"] for w in hook["webhooks"])
    else:
        assert not [o for o in stored if o["apiVersion"].startswith("cert-manager.io/")]
        assert [w["clientConfig"]["caBundle"] for w in hook["webhooks"]] == [ca, ca]


MONITORING = (
    "--set", "metrics.prometheusRule.enabled=true",
    "--set", "metrics.serviceMonitor.enabled=true",
    "--set", "metrics.dashboard.enabled=true",
)  # fmt: skip


def selected_services(monitor: dict[str, Any], stored: list[dict[str, Any]]) -> list[str]:
    """The stored Services a ServiceMonitor's selector matches (prometheus-operator's job is the Service's name)."""
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    services = by_kind(stored)["Service"]
    return [s["metadata"]["name"] for s in services if wanted <= s["metadata"].get("labels", {}).items()]


def rule_groups(stored: list[dict[str, Any]], name: str) -> dict[str, dict[str, str]]:
    """Group name -> alert -> expression, as the stored PrometheusRule has them."""
    groups = one(stored, "PrometheusRule", name)["spec"]["groups"]
    return {group["name"]: {rule["alert"]: rule["expr"] for rule in group["rules"]} for group in groups}


DIRECTORY_APP = "4d5e6f70-8192-4a3b-9c4d-5e6f708192a3"


def test_install_with_the_controller_and_monitoring_stores_them(release: Release) -> None:
    release.install(
        "--set", "controller.enabled=true",
        *MONITORING,
        "--set", "metrics.prometheusRule.identityNotReadyFor=30m",
        "--set", f"controller.directoryClientId={DIRECTORY_APP}",
    )  # fmt: skip
    stored = assert_stored_as_rendered(release)
    controller = f"{release.fullname}-controller"
    deployment = one(stored, "Deployment", controller)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == controller
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "controller"
    assert f"--lease-name={controller}" in container["args"]
    assert "--cluster-name=kubernetes" in container["args"]
    assert f"--directory-client-id={DIRECTORY_APP}" in container["args"]
    (token,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "entra-token"]
    assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "api://AzureADTokenExchange"
    selectors = {d["metadata"]["name"]: d["spec"]["selector"]["matchLabels"] for d in by_kind(stored)["Deployment"]}
    assert selectors[controller] != selectors[release.fullname]  # neither Deployment adopts the other's Pods
    rules = one(stored, "ClusterRole", controller)["rules"]
    granted = {(resource, verb) for rule in rules for resource in rule.get("resources", []) for verb in rule["verbs"]}
    assert {("agentidentities/status", "patch"), ("agentblueprints/status", "patch"), ("events", "create")} <= granted
    assert ("agentidentities/finalizers", "update") in granted
    assert {"nonResourceURLs": ["/.well-known/openid-configuration"], "verbs": ["get"]} in rules
    assert not any(resource == "secrets" for resource, _ in granted)
    leader = one(stored, "Role", f"{controller}-leader")
    assert [rule["resources"] for rule in leader["rules"]] == [["leases"], ["leases"]]
    assert leader["rules"][1]["resourceNames"] == [controller]  # its one Lease
    # One ServiceMonitor per process, each selecting exactly its Service, whose name becomes the job
    # that its group of alerts selects.
    metrics_service = f"{controller}-metrics"
    monitors = {m["metadata"]["name"]: m for m in by_kind(stored)["ServiceMonitor"]}
    assert sorted(monitors) == [release.fullname, controller]
    assert selected_services(monitors[release.fullname], stored) == [release.fullname]
    assert selected_services(monitors[controller], stored) == [metrics_service]
    for monitor in monitors.values():
        assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "30s"}]
    for name in (release.fullname, metrics_service):
        assert "metrics" in [port["name"] for port in one(stored, "Service", name)["spec"]["ports"]]
    assert one(stored, "Service", metrics_service)["spec"]["clusterIP"] == "None"  # every replica, leader or not
    groups = rule_groups(stored, release.fullname)
    assert {group: len(alerts) for group, alerts in groups.items()} == {
        "entra-webhook": 6,
        "entra-webhook-controller": 10,
    }
    for group, job in (("entra-webhook", release.fullname), ("entra-webhook-controller", metrics_service)):
        for alert, expression in groups[group].items():
            assert f'job="{job}"' in expression, f"{alert} does not select job {job}"
    assert "EntraWebhookCertificateExpiresSoon" in groups["entra-webhook"]
    controller_rules = one(stored, "PrometheusRule", release.fullname)["spec"]["groups"][1]["rules"]
    (not_ready,) = [r for r in controller_rules if r["alert"] == "EntraControllerIdentitiesNotReady"]
    assert not_ready["for"] == "30m"
    assert f"kubectl get lease {controller} -n {release.namespace}" in "".join(
        r["annotations"]["description"] for r in controller_rules
    )
    dashboard = one(stored, "ConfigMap", f"{release.fullname}-dashboard")
    assert json.loads(dashboard["data"]["entra-webhook.json"])["uid"] == "entra-webhook"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_monitoring_without_the_controller_leaves_out_its_scrape_and_alerts(release: Release) -> None:
    release.install("--set", "controller.enabled=false", *MONITORING)
    stored = assert_stored_as_rendered(release)
    assert [m["metadata"]["name"] for m in by_kind(stored)["ServiceMonitor"]] == [release.fullname]
    assert list(rule_groups(stored, release.fullname)) == ["entra-webhook"]  # no alert on a controller not there
    assert [d["metadata"]["name"] for d in by_kind(stored)["Deployment"]] == [release.fullname]


def test_upgrade_with_changed_values_stores_the_change(release: Release, control_plane: ControlPlane) -> None:
    release.install()
    before = release.manifest()
    release.upgrade(
        "--set", "replicaCount=3",
        "--set", "sidecar.mode=container",
        "--set", "webhook.failurePolicy=Ignore",
        "--set", "certificates.mode=cert-manager",
    )  # fmt: skip
    stored = assert_stored_as_rendered(release)
    deployment = one(stored, "Deployment", release.fullname)
    assert deployment["spec"]["replicas"] == 3
    assert env_of(deployment)["ENTRA_WEBHOOK_MODE"] == "container"
    hook = one(stored, "MutatingWebhookConfiguration", release.fullname)
    assert [w["failurePolicy"] for w in hook["webhooks"]] == ["Ignore", "Ignore"]
    assert "cert-manager.io/inject-ca-from" in hook["metadata"]["annotations"]
    # What only the self-managed mode had is gone.
    dropped = [d for d in before if d["metadata"]["name"].endswith(("-tls", "-certs", "-cabundle"))]
    assert len(dropped) == 5
    assert len(absent(control_plane, dropped)) == 5
    history = json.loads(release.helm("history", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert [(h["revision"], h["status"]) for h in history] == [(1, "superseded"), (2, "deployed")]


def test_uninstall_leaves_nothing_but_the_crds(release: Release, control_plane: ControlPlane) -> None:
    # The session applied the CRDs for every test; gone for a moment, Helm installs them from crds/ itself.
    try:
        control_plane.kubectl("delete", "crd", *CRD_NAMES, "--wait=true", "--timeout=60s")
        release.install("--set", "controller.enabled=true", "--set", "metrics.prometheusRule.enabled=true")
        control_plane.kubectl("wait", "--for=condition=Established", "crd", *CRD_NAMES, "--timeout=60s")
        installed = {crd["metadata"]["uid"] for crd in crds_of(control_plane)}
        assert len(installed) == 2
        agents = f"{release.name}-agents"
        apply(control_plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": agents}})
        apply(control_plane, *example_config(agents))
        resources = resource_uids(control_plane, agents)
        assert len(resources) == 4  # two blueprints, two identities
        documents = release.manifest()
        assert len(documents) >= 20
        release.helm("uninstall", release.name, "-n", release.namespace)
        # Kept: the controller's ClusterRole, which it needs to let its install go (docs/operations/uninstall.md).
        role = f"{release.fullname}-controller"
        kept = [d for d in documents if (d["kind"], d["metadata"]["name"]) == ("ClusterRole", role)]
        assert len(kept) == 1
        assert sorted(absent(control_plane, documents)) == sorted(
            f"{d['kind']}/{d['metadata']['name']}" for d in documents if d not in kept
        )
        control_plane.kubectl("delete", "clusterrole", role)  # what the uninstall page says, to remove everything
        owned = control_plane.kubectl("get", "secrets", "-n", release.namespace, "-l", "owner=helm", "-o", "name")
        assert owned.stdout == ""  # Helm's release records too
        labelled = ("all,clusterroles,clusterrolebindings", "-A", "-l", f"app.kubernetes.io/instance={release.name}")
        # The Deployments' ReplicaSets and Pods go after them, by the garbage collector (Helm 3 deletes
        # with background propagation), so they may outlive the uninstall by a few seconds.
        eventually(lambda: control_plane.kubectl("get", *labelled, "-o", "name").stdout == "", timeout=60)
        assert {crd["metadata"]["uid"] for crd in crds_of(control_plane)} == installed  # the very ones Helm made
        assert resource_uids(control_plane, agents) == resources  # every blueprint and identity, untouched
    finally:  # whatever happened, the later tests find the CRDs
        apply_crds(control_plane)


def resource_uids(plane: ControlPlane, namespace: str) -> dict[str, str]:
    """kind/name -> uid of every AgentBlueprint and AgentIdentity in a namespace."""
    listed = plane.kubectl("get", "agentblueprints,agentidentities", "-n", namespace, "-o", "json")
    return {
        f"{item['kind']}/{item['metadata']['name']}": item["metadata"]["uid"]
        for item in json.loads(listed.stdout)["items"]
    }


CRD_NAMES = ("agentblueprints.entra.io", "agentidentities.entra.io")


def crds_of(plane: ControlPlane) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(plane.kubectl("get", "crd", *CRD_NAMES, "-o", "json").stdout)["items"]
    return found


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["certificates.mode=vault"],
            "at '/certificates/mode': value must be one of 'self-managed', 'cert-manager', 'secret'",
        ),
        (["replicas=3"], "additional properties 'replicas' not allowed"),
        (["webhook.failurePolicy=Sometimes"], "at '/webhook/failurePolicy': value must be one of 'Fail', 'Ignore'"),
        (["sidecar.port=80"], "at '/sidecar/port': minimum: got 80, want 1,024"),
        (["sidecar.mode=sidecar"], "at '/sidecar/mode': value must be one of 'auto', 'native', 'container'"),
        (
            ["sidecar.resources.limits.memory=lots"],
            "at '/sidecar/resources/limits/memory': 'lots' does not match pattern",
        ),
        (
            ["sidecar.resources.limits.memory=lots"],
            "at '/sidecar/resources/limits/memory': value must be 'a Kubernetes quantity such as 50m, 1, 128Mi or 1Gi'",
        ),
        (
            ["controller.clusterName=Prod_1"],
            "value must be 'goes into the marker tag of every identity the controller creates; unique per cluster",
        ),
        (["image.digest=sha256:abc"], "at '/image/digest': 'sha256:abc' does not match pattern"),
        (["controller.directoryClientId=app"], "at '/controller/directoryClientId': 'app' does not match pattern"),
        (
            ["metrics.prometheusRule.identityNotReadyFor=soon"],
            "at '/metrics/prometheusRule/identityNotReadyFor': 'soon' does not match pattern",
        ),
        (
            ["sidecar.image=mcr.microsoft.com/entra-sdk/auth-sidecar:latest"],
            "sidecar.image: pin the sidecar by a tag other than latest or by a digest",
        ),
        (
            ["replicaCount=1"],
            "podDisruptionBudget.minAvailable (1) must be below replicaCount (1), or no node running the webhook",
        ),
    ],
)
def test_values_the_chart_refuses_fail_the_install_with_a_clear_message(
    release: Release, control_plane: ControlPlane, values: list[str], message: str
) -> None:
    assert_refused(release, control_plane, values, message)


def assert_refused(release: Release, control_plane: ControlPlane, values: list[str], message: str) -> list[str]:
    """`helm install` with `values` fails with `message`, and leaves no release and no webhook configuration."""
    sets = [arg for value in values for arg in ("--set", value)]
    install = ["install", release.name, str(CHART), "-n", release.namespace, *release.helm.options()]
    result = release.helm(*install, *isolating(release.name), *sets, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert release.helm("list", "-n", release.namespace, "-q").stdout == ""
    hook = control_plane.kubectl("get", "mutatingwebhookconfiguration", release.fullname, check=False)
    assert "NotFound" in hook.stderr
    return sets


@pytest.fixture
def without_stand_ins(helm: Helm) -> Iterator[Helm]:
    """The cluster without the cert-manager and prometheus-operator APIs for one test; back afterwards, whatever
    happens (deleting a CRD waits for its resources to go, which a loaded machine may take a while over)."""
    plane = helm.plane
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(STAND_IN_CRDS.read_text()) if d]

    def gone() -> bool:
        return plane.kubectl("get", "crd", *names, "--ignore-not-found", "-o", "name").stdout == ""

    try:
        plane.kubectl("delete", "-f", str(STAND_IN_CRDS), "--ignore-not-found", "--wait=false")
        eventually(gone, timeout=180)
        yield helm
    finally:
        eventually(gone, timeout=180)
        plane.kubectl("apply", "-f", str(STAND_IN_CRDS), timeout=120)
        established = ("wait", "--for=condition=Established", "-f", str(STAND_IN_CRDS), "--timeout=110s")
        plane.kubectl(*established, timeout=120)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            ["certificates.mode=cert-manager"],
            "certificates.mode=cert-manager needs cert-manager, but this cluster does not serve cert-manager.io/v1: "
            "install cert-manager (v1.0+) first, or set certificates.mode=self-managed",
        ),
        (
            ["metrics.serviceMonitor.enabled=true"],
            "metrics.serviceMonitor.enabled=true needs prometheus-operator, but this cluster does not serve "
            "monitoring.coreos.com/v1: install prometheus-operator first, or set metrics.serviceMonitor.enabled=false",
        ),
        (
            ["metrics.prometheusRule.enabled=true"],
            "or set metrics.prometheusRule.enabled=false (manifests/monitoring/alerts.yaml holds the same rules",
        ),
    ],
)
@pytest.mark.usefixtures("without_stand_ins")
def test_a_value_needing_an_api_the_cluster_does_not_serve_fails_before_anything_is_created(
    release: Release, control_plane: ControlPlane, values: list[str], message: str
) -> None:
    sets = assert_refused(release, control_plane, values, message)
    # Offline, nothing is known of a cluster: `helm template` renders as asked.
    rendered = release.helm("template", release.name, str(CHART), *sets)
    assert "kind: MutatingWebhookConfiguration" in rendered.stdout
