"""Operating the webhook on a real control plane: manifests, Events and warnings, certificates."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes import config as kube_config

from scripts.go_tools import go_tools
from tests.e2e.conftest import (
    CRDS,
    apply,
    create,
    deployment,
    example_config,
    labelled_webhook,
    wait_for_service_account,
)
from tests.e2e.controlplane import REPO_ROOT, ControlPlane
from tests.e2e.test_injection import eventually, has_sidecar, named, pod
from tests.servers import Served, free_port, make_certs, serve
from webhook.injector.certs import make_ca, make_serving, write_bundle
from webhook.injector.rotation import PREVIOUS_CA, CertificateRotator, CertificateStore, Lifetimes

MANIFESTS = REPO_ROOT / "manifests"


def build(plane: ControlPlane, directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` with the kubectl of the server's version, as its users would.

    kubectl 1.20's kustomize (v2.0.3) cannot read directories under `resources`: there, a standalone
    kustomize v5 (the release kubectl 1.36 embeds), as docs/getting-started/install.md tells those users. The
    manifests are rendered for current servers; on older ones, as the chart does by itself, the PodDisruptionBudget is
    policy/v1beta1 before 1.21 (the fields are the same) and webhooks have no matchConditions before 1.30.
    """
    if plane.version >= (1, 21):
        built = plane.kubectl("kustomize", str(directory)).stdout
    else:
        kustomize = go_tools("kustomize") / "kustomize"
        built = subprocess.run([kustomize, "build", directory], capture_output=True, text=True, check=True).stdout
    documents = list(yaml.safe_load_all(built))
    for document in documents:
        if document["kind"] == "PodDisruptionBudget" and plane.version < (1, 21):
            document["apiVersion"] = "policy/v1beta1"
        if document["kind"] == "MutatingWebhookConfiguration" and plane.version < (1, 30):
            for entry in document["webhooks"]:
                entry.pop("matchConditions")
    return documents


@pytest.mark.parametrize("overlay", ["", "self-managed", "cert-manager"])
def test_manifests_and_overlays_are_accepted_by_the_api_server(control_plane: ControlPlane, overlay: str) -> None:
    documents = build(control_plane, MANIFESTS / overlay)
    kinds = {document["kind"] for document in documents}
    assert {"Namespace", "Deployment", "Service", "PodDisruptionBudget"} <= kinds
    assert {"ClusterRole", "ClusterRoleBinding", "ServiceAccount", "MutatingWebhookConfiguration"} <= kinds
    assert "CustomResourceDefinition" not in kinds  # manifests/crds/, apart: deleting an install keeps them
    cert_manager = [d for d in documents if d["apiVersion"].startswith("cert-manager.io/")]
    assert bool(cert_manager) == (overlay == "cert-manager")
    if overlay == "cert-manager":
        assert {d["kind"] for d in cert_manager} == {"Issuer", "Certificate"}
        hook = next(d for d in documents if d["kind"] == "MutatingWebhookConfiguration")
        assert hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "entra-system/entra-webhook-tls"
    apply(control_plane, *[d for d in documents if d["kind"] == "Namespace"])
    # A dry run only: a stored configuration would send Pods to a Service IP no kubelet serves here.
    rest = [d for d in documents if d not in cert_manager and d["kind"] != "Namespace"]
    result = control_plane.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(rest))
    assert result.stdout.count("(server dry run)") == len(rest)


def test_webhook_rbac_reads_no_secrets_or_configmaps(control_plane: ControlPlane) -> None:
    roles = [d for d in build(control_plane, MANIFESTS) if d["kind"] == "ClusterRole"]
    webhook = [role for role in roles if role["metadata"]["name"].startswith("entra-webhook")]
    rules = [rule for role in webhook if not role["metadata"]["name"].endswith("-controller") for rule in role["rules"]]
    assert {resource for rule in rules for resource in rule.get("resources", [])} == {
        "agentblueprints", "agentidentities", "events",
    }  # fmt: skip


def test_controller_rbac_grants_no_secret_anywhere(control_plane: ControlPlane) -> None:
    documents = build(control_plane, MANIFESTS) + build(control_plane, CRDS)  # its ClusterRole ships with the CRDs
    roles = [d for d in documents if d["kind"] in {"ClusterRole", "Role"} and "controller" in d["metadata"]["name"]]
    resources = {resource for role in roles for rule in role["rules"] for resource in rule.get("resources", [])}
    assert "secrets" not in resources
    assert {"agentidentities/status", "agentidentities/finalizers", "leases"} <= resources


def _events(plane: ControlPlane, namespace: str, reason: str, kind: str = "ReplicaSet") -> list[dict[str, Any]]:
    listed = plane.kubectl("get", "events", "-n", namespace, "-o", "json")
    items = json.loads(listed.stdout)["items"]
    return [e for e in items if e["reason"] == reason and e["involvedObject"]["kind"] == kind]


def test_a_skipped_pod_gets_a_warning_and_an_event_on_its_replica_set(
    control_plane: ControlPlane, namespace: str
) -> None:
    _, warnings = create(control_plane, pod(namespace, "plain"))
    assert f'Warning: pod "plain" in namespace "{namespace}": names no agent identity' in warnings
    (on_pod,) = eventually(lambda: _events(control_plane, namespace, "EntraInjectionSkipped", kind="Pod"))
    assert on_pod["involvedObject"]["name"] == "plain"
    apply(control_plane, deployment(namespace, "unnamed", {}))
    (event,) = eventually(lambda: _events(control_plane, namespace, "EntraInjectionSkipped"))
    assert event["involvedObject"]["kind"] == "ReplicaSet"
    assert event["involvedObject"]["name"].startswith("unnamed-")
    assert event["type"] == "Normal"
    assert event["message"].startswith('pod "unnamed-')
    assert "names no agent identity" in event["message"]


def test_a_denied_pod_gets_a_warning_event_on_its_replica_set(control_plane: ControlPlane, namespace: str) -> None:
    apply(control_plane, deployment(namespace, "typo", {"entra.io/agent-identity": "sales-agnt"}))
    (event,) = eventually(lambda: _events(control_plane, namespace, "EntraInjectionDenied"))
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "ReplicaSet"
    assert 'entra.io/agent-identity names "sales-agnt"' in event["message"]
    time.sleep(3)  # the ReplicaSet keeps retrying: the rate limit folds the retries into later Events
    assert len(_events(control_plane, namespace, "EntraInjectionDenied")) == 1


def test_dry_run_creates_record_no_events(control_plane: ControlPlane, namespace: str) -> None:
    create(control_plane, pod(namespace, "dry"), "--dry-run=server")
    time.sleep(1)
    assert _events(control_plane, namespace, "EntraInjectionSkipped", kind="Pod") == []


@pytest.fixture
def rotating_webhook(control_plane: ControlPlane, tmp_path: Path) -> Iterator[tuple[Served, str]]:
    """A webhook of its own (so the session's is not disturbed), for namespaces labelled e2e-rotation."""
    certs = make_certs(tmp_path / "certs")
    args = ("--kubeconfig", str(control_plane.kubeconfig), "--tls-reload-seconds", "0.2", "--no-events")
    with serve(certs, tmp_path, *args) as served:
        name = "entra-e2e-rotation"
        apply(
            control_plane,
            labelled_webhook(
                control_plane, name, served.url + "/mutate", (certs / "ca.crt").read_bytes(), "e2e-rotation"
            ),
        )
        try:
            yield served, name
        finally:
            control_plane.kubectl("delete", "mutatingwebhookconfiguration", name)


def test_a_certificate_rotated_on_disk_mid_load_keeps_every_admission_answered(
    control_plane: ControlPlane, rotating_webhook: tuple[Served, str]
) -> None:
    served, name = rotating_webhook

    apply(
        control_plane,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "rotation", "labels": {"e2e-rotation": "yes"}}},
    )
    wait_for_service_account(control_plane, "rotation", "default")
    apply(control_plane, *example_config("rotation"))
    # The API server trusts the old and the new CA during the overlap, as the self-managed mode arranges.
    new_ca = make_ca()
    bundle = (served.certs / "ca.crt").read_bytes() + new_ca.cert_pem
    apply(control_plane, labelled_webhook(control_plane, name, served.url + "/mutate", bundle, "e2e-rotation"))

    results: list[tuple[int, bool]] = []
    stop = threading.Event()

    def admit_pods() -> None:
        while not stop.is_set():
            status, body = control_plane.request(
                "POST", "/api/v1/namespaces/rotation/pods?dryRun=All", named("rotation", f"load-{len(results)}")
            )
            injected = status == 201 and has_sidecar(body)
            results.append((status, injected))

    with ThreadPoolExecutor(max_workers=4) as pool:
        workers = [pool.submit(admit_pods) for _ in range(4)]
        eventually(lambda: len(results) >= 40, timeout=60, interval=0.05)
        write_bundle(served.certs, new_ca, make_serving(new_ca, ["localhost"], ["127.0.0.1"]))
        eventually(lambda: "serving certificate reloaded" in served.logs(), timeout=10, interval=0.05)
        count = len(results)
        eventually(lambda: len(results) >= count + 40, timeout=60, interval=0.05)
        stop.set()
        for worker in workers:
            worker.result()
    failed = [result for result in results if result != (201, True)]
    assert failed == []
    assert len(results) >= 80


SELF_NAMESPACE = "e2e-system"


def _store(plane: ControlPlane, secret: str, hook: str) -> CertificateStore:
    api = kube_config.new_client_from_config(config_file=str(plane.kubeconfig))
    return CertificateStore(api, SELF_NAMESPACE, secret, hook)


@pytest.fixture
def self_managed(control_plane: ControlPlane, tmp_path: Path) -> Iterator[tuple[Served, CertificateStore]]:
    """`serve --manage-certs` against the real API, with its own (pre-created, empty) Secret."""
    apply(
        control_plane,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SELF_NAMESPACE}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "e2e-tls", "namespace": SELF_NAMESPACE}},
    )
    port = free_port()
    # The configuration exists first with no caBundle: the webhook fills it in before it serves.
    apply(
        control_plane,
        labelled_webhook(control_plane, "entra-e2e-self", f"https://127.0.0.1:{port}/mutate", None, "e2e-self"),
    )
    args = (
        "--kubeconfig",
        str(control_plane.kubeconfig),
        "--manage-certs",
        "--tls-secret",
        "e2e-tls",
        "--webhook-configuration",
        "entra-e2e-self",
        "--cert-ip",
        "127.0.0.1",
        "--cert-sync-seconds",
        "0.5",
        "--tls-reload-seconds",
        "0.2",
        "--no-events",
    )
    run_dir = tmp_path / "run"  # where the webhook writes tls.crt and tls.key from its Secret
    env = {"ENTRA_WEBHOOK_OWN_NAMESPACE": SELF_NAMESPACE}
    with serve(run_dir, tmp_path, *args, env=env, port=port, verify=False) as served:
        store = _store(control_plane, "e2e-tls", "entra-e2e-self")
        data, _ = store.read_secret()
        (run_dir / "ca.crt").write_bytes(data["ca.crt"])  # what a client must trust: the webhook's own CA
        try:
            yield served, store
        finally:
            control_plane.kubectl("delete", "mutatingwebhookconfiguration", "entra-e2e-self")


def _injects(plane: ControlPlane, namespace: str) -> bool:
    stored, _ = create(plane, named(namespace, f"p{time.monotonic_ns()}"), "--dry-run=server")
    return has_sidecar(stored)


def _self_namespace(plane: ControlPlane) -> str:
    labelled = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "self", "labels": {"e2e-self": "yes"}}}
    apply(plane, labelled)
    wait_for_service_account(plane, "self", "default")
    apply(plane, *example_config("self"))
    return "self"


def test_self_managed_mode_makes_a_certificate_the_api_server_trusts(
    control_plane: ControlPlane, self_managed: tuple[Served, CertificateStore]
) -> None:
    _, store = self_managed
    data, _ = store.read_secret()
    assert sorted(data) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "entra-webhook.e2e-system.svc" in names.get_values_for_type(x509.DNSName)
    hook = json.loads(
        control_plane.kubectl("get", "mutatingwebhookconfiguration", "entra-e2e-self", "-o", "json").stdout
    )
    assert hook["webhooks"][0]["clientConfig"]["caBundle"] == base64.b64encode(data["ca.crt"]).decode()
    assert _injects(control_plane, _self_namespace(control_plane))


def test_self_managed_mode_reissues_a_lost_certificate_without_failing_admissions(
    control_plane: ControlPlane, self_managed: tuple[Served, CertificateStore]
) -> None:
    served, store = self_managed
    namespace = _self_namespace(control_plane)
    before = served.serving_serial()
    remove = json.dumps([{"op": "remove", "path": "/data/tls.crt"}])
    control_plane.kubectl("patch", "secret", "e2e-tls", "-n", SELF_NAMESPACE, "--type=json", "-p", remove)
    eventually(lambda: served.serving_serial() != before, timeout=20, interval=0.1)
    data, _ = store.read_secret()
    assert "tls.crt" in data
    assert _injects(control_plane, namespace)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def race(control_plane: ControlPlane) -> Iterator[CertificateStore]:
    """A Secret and a webhook configuration of their own (selecting no namespace) for clock games."""
    apply(
        control_plane,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SELF_NAMESPACE}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "race-tls", "namespace": SELF_NAMESPACE}},
        labelled_webhook(control_plane, "entra-e2e-race", "https://127.0.0.1:1/mutate", None, "e2e-race-nothing"),
    )
    try:
        yield _store(control_plane, "race-tls", "entra-e2e-race")
    finally:
        control_plane.kubectl("delete", "mutatingwebhookconfiguration", "entra-e2e-race")
        control_plane.kubectl("delete", "secret", "race-tls", "-n", SELF_NAMESPACE)


def _rotator(store: CertificateStore, directory: Path, clock: Clock) -> CertificateRotator:
    return CertificateRotator(
        store, ["entra-webhook.e2e-system.svc"], [], directory / "tls.crt", directory / "tls.key", Lifetimes(), clock
    )


def test_replicas_racing_to_rotate_converge_on_one_certificate(race: CertificateStore, tmp_path: Path) -> None:
    clock = Clock()
    replicas = [_rotator(race, tmp_path / f"replica-{index}", clock) for index in range(4)]
    replicas[0].sync()
    clock.now += dt.timedelta(days=61)  # past two thirds of 90 days: every replica finds it due
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda replica: replica.sync(), replicas))
    data, _ = race.read_secret()
    assert sum(replica.rotations for replica in replicas) == 2  # the first issue, then exactly one renewal
    for index in range(4):
        assert (tmp_path / f"replica-{index}" / "tls.crt").read_bytes() == data["tls.crt"]
    assert x509.load_pem_x509_certificate(data["tls.crt"]).not_valid_before_utc > clock.now - dt.timedelta(hours=1)


def test_a_new_ca_overlaps_with_the_old_until_the_old_expires(race: CertificateStore, tmp_path: Path) -> None:
    clock = Clock()
    rotator = _rotator(race, tmp_path, clock)
    rotator.sync()
    first, _ = race.read_secret()
    clock.now += dt.timedelta(days=2500)  # past two thirds of the CA's ten years
    rotator.sync()
    second, _ = race.read_secret()
    assert second["ca.crt"] != first["ca.crt"]
    assert second[PREVIOUS_CA] == first["ca.crt"]
    hook = race.admission.read_mutating_webhook_configuration("entra-e2e-race")
    assert base64.b64decode(hook.webhooks[0].client_config.ca_bundle) == second["ca.crt"] + first["ca.crt"]
    clock.now += dt.timedelta(days=1200)  # the first CA has expired: nothing it signed is served anymore
    rotator.sync()
    third, _ = race.read_secret()
    assert PREVIOUS_CA not in third
    hook = race.admission.read_mutating_webhook_configuration("entra-e2e-race")
    assert base64.b64decode(hook.webhooks[0].client_config.ca_bundle) == third["ca.crt"]


def test_with_only_the_manifests_rbac_it_is_ready_after_listing_and_records_events(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    documents = build(control_plane, MANIFESTS)
    account = next(d for d in documents if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "entra-webhook")
    rbac = [
        d
        for d in documents
        if d["kind"] in {"ClusterRole", "ClusterRoleBinding"} and d["metadata"]["name"].startswith("entra-webhook")
    ]
    apply(control_plane, *[d for d in documents if d["kind"] == "Namespace"], account)
    wait_for_service_account(control_plane, "entra-system", "entra-webhook")
    token = control_plane.service_account_token("entra-system", "entra-webhook")
    kubeconfig = control_plane.kubeconfig_for("entra-webhook", token, tmp_path / "sa")
    certs = make_certs(tmp_path / "certs")
    with (
        serve(certs, tmp_path, "--kubeconfig", str(kubeconfig), ready=False) as served,
        served.client() as client,
    ):
        time.sleep(1)  # it has tried to list by now, and was refused
        assert client.get("/readyz").json() == {"status": "not ready", "reason": "configuration not loaded yet"}
        apply(control_plane, *rbac)
        eventually(lambda: client.get("/readyz").status_code == 200, timeout=40)
        review = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "rbac-1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "operation": "CREATE",
                "namespace": namespace,
                "object": {**pod(namespace, "rbac-check"), "metadata": {"name": "rbac-check"}},
            },
        }
        assert client.post("/mutate", json=review).json()["response"]["warnings"]
        (event,) = eventually(lambda: _events(control_plane, namespace, "EntraInjectionSkipped", kind="Pod"))
        assert event["involvedObject"]["name"] == "rbac-check"
        assert event["source"]["component"] == "entra-webhook"
        assert "403 Forbidden" in served.logs()  # the refused list before the ClusterRole existed
