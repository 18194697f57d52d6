"""`entra-webhook check` against a real API server, healthy and deliberately broken.

The session's webhook is called by URL on loopback (the harness has no kubelet and no kube-proxy); an
in-cluster install is a Service. Both are here: a webhook behind a Service whose Endpoints point at this
machine's non-loopback address, which the API server reaches through its service proxy and, for admission,
at the endpoint (the harness runs it with --enable-aggregator-routing). The controller's leader is checked
through its Lease, and through the API server's Pod proxy to a Pod object carrying the leader's name and this
machine's address.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import itertools
import json
import re
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import resource
from tests.e2e.conftest import (
    CEL_SINCE,
    WEBHOOK_CONFIG,
    apply,
    apply_crds,
    deployment,
    example_config,
    wait_for_service_account,
    webhook_configuration,
)
from tests.e2e.controlplane import ControlPlane
from tests.e2e.test_injection import eventually
from tests.processes import DIE_WITH_PARENT
from tests.servers import Served, free_port, serve
from webhook.cli import main
from webhook.injector.certs import ca_bundle, make_ca, make_serving, write_bundle

_numbers = itertools.count(1)
TEST_LABEL = "entra-check-test"
GUID = "7a1c2f0e-4b5d-4c3e-9f00-123456789abc"


def check(plane: ControlPlane, *args: str) -> tuple[int, str]:
    """`entra-webhook check` as a user runs it, against this control plane; its exit status and output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["check", "--kubeconfig", str(plane.kubeconfig), *args])
    return code, out.getvalue()


def line(output: str, start: str) -> str:
    """The one output line that starts with `start`."""
    (found,) = [text for text in output.splitlines() if text.startswith(start)]
    return found


def host_address() -> str:
    """This machine's first non-loopback IPv4 address: Endpoints and Pod IPs may not be loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))  # SIOCGIFADDR
            except OSError:
                continue
            address = socket.inet_ntoa(packed[20:24])
            if not address.startswith("127."):
                return address
    raise AssertionError("these tests need a non-loopback IPv4 address on this machine (Endpoints refuse loopback)")


def pod_at(plane: ControlPlane, namespace: str, name: str, address: str, ports: dict[str, int]) -> dict[str, Any]:
    """A Pod object whose status says it runs at `address` (no kubelet here writes one): what the API server's
    Pod and service proxies dial. Returns the reference an Endpoints address gives it."""
    container = {
        "name": "main",
        "image": "registry.k8s.io/pause:3.9",
        "ports": [{"name": port_name, "containerPort": port} for port_name, port in ports.items()],
    }
    metadata = {"name": name, "namespace": namespace, "labels": {"entra.io/inject": "disabled"}}
    apply(plane, {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": [container]}})
    status = {"status": {"phase": "Running", "podIP": address, "podIPs": [{"ip": address}]}}
    answer, body = plane.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status", status,
                                 content_type="application/merge-patch+json")  # fmt: skip
    assert answer == 200, body
    return {"kind": "Pod", "name": name, "namespace": namespace}


def tls_secret(namespace: str, certs: Path) -> dict[str, Any]:
    data = {name: base64.b64encode((certs / name).read_bytes()).decode() for name in ("tls.crt", "tls.key")}
    metadata = {"name": "entra-webhook-tls", "namespace": namespace}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "kubernetes.io/tls", "data": data}


def said_once(plane: ControlPlane, flags: list[str], start: str) -> str | None:
    """check's output once it has a line starting with `start`, else None (for `eventually`)."""
    _, output = check(plane, *flags)
    return output if any(text.startswith(start) for text in output.splitlines()) else None


def namespace_doc(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


@contextlib.contextmanager
def fresh_namespace(plane: ControlPlane, prefix: str, labels: dict[str, str] | None = None) -> Iterator[str]:
    name = f"{prefix}-{next(_numbers)}"
    apply(plane, namespace_doc(name, labels))
    wait_for_service_account(plane, name, "default")
    try:
        yield name
    finally:
        plane.kubectl("delete", "namespace", name, "--wait=false")


def unmanaged_config(namespace: str) -> list[dict[str, Any]]:
    """The examples without the managed identity (no controller runs here), and the client secret's Secret."""
    documents = [d for d in example_config(namespace) if d["metadata"]["name"] != "research-agent"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "support-blueprint", "namespace": namespace},
        "stringData": {"client-secret": "not-a-real-secret"},
    }
    return [*documents, secret]


@contextlib.contextmanager
def configuration(plane: ControlPlane, name: str, **client: Any) -> Iterator[str]:
    """A webhook configuration of the shipped shape, calling `client` (url or service, caBundle), selecting only
    namespaces labelled with this test's label: the other tests' Pods are never sent to it."""
    document = webhook_configuration(name, "https://unused", b"", version=plane.version)
    for hook in document["webhooks"]:
        hook["clientConfig"] = client
        hook["namespaceSelector"].setdefault("matchLabels", {})[TEST_LABEL] = name
    apply(plane, document)
    try:
        yield name
    finally:
        plane.kubectl("delete", "mutatingwebhookconfiguration", name, "--ignore-not-found")


def test_a_healthy_install_called_by_url_checks_clean(control_plane: ControlPlane, webhook: Served) -> None:
    with fresh_namespace(control_plane, "healthy", {"entra.io/inject": "enabled"}) as namespace:
        apply(control_plane, *unmanaged_config(namespace))
        code, output = check(control_plane, "--webhook-configuration", WEBHOOK_CONFIG, "--namespace", namespace)
    assert code == 0, output
    served = control_plane.server_version()["gitVersion"]
    assert line(output, "[ok  ] API server:") == f"[ok  ] API server: Kubernetes {served} at {control_plane.server}"
    assert "[ok  ] CRD agentblueprints.entra.io: established, serving v1alpha1" in output
    assert "[ok  ] CRD agentidentities.entra.io: established, serving v1alpha1" in output
    url = f"{webhook.url}/mutate"
    assert f"[ok  ] webhook URL {url}: the caBundle trusts the certificate it serves" in output
    assert f"[ok  ] webhook URL {url}: {webhook.url}/readyz answers 200" in output
    assert line(output, "[ok  ] admission through the API server: the webhook answered a dry-run Pod in namespace")
    assert (
        f'[ok  ] AgentBlueprints and AgentIdentities: 2 and 1 (0 managed) in namespace "{namespace}", none with '
        "a problem"
    ) in output
    assert "[warn] controller (Lease entra-system/entra-webhook-controller): no controller has ever led" in output
    assert output.rstrip().endswith(" 0 failed")


def test_a_missing_crd_fails_with_the_command_that_installs_it(control_plane: ControlPlane, webhook: Served) -> None:
    del webhook
    control_plane.kubectl("delete", "crd", "agentidentities.entra.io", "--wait=true", "--timeout=60s")
    try:
        code, output = check(control_plane, "--webhook-configuration", WEBHOOK_CONFIG)
    finally:
        apply_crds(control_plane)
    assert code == 1
    assert (
        "[FAIL] CRD agentidentities.entra.io: not installed: no AgentIdentity can exist; fix: kubectl apply -k "
        "manifests/crds (Helm installs them with the chart)"
    ) in output
    assert "[ok  ] CRD agentblueprints.entra.io: established, serving v1alpha1" in output


def test_a_ca_bundle_that_does_not_trust_the_served_certificate_fails_twice(
    control_plane: ControlPlane, webhook: Served
) -> None:
    """Seen from here (a TLS handshake as the API server makes it) and by the API server itself (a dry run)."""
    stranger = ca_bundle(make_ca().cert_pem)
    url = webhook.url + "/mutate"
    with (
        configuration(control_plane, "entra-check-wrong-ca", url=url, caBundle=stranger) as name,
        fresh_namespace(control_plane, "wrong-ca", {TEST_LABEL: name}),
    ):
        code, output = check(control_plane, "--webhook-configuration", name)
    assert code == 1
    tls = line(output, f"[FAIL] webhook URL {url}: ")
    assert "the caBundle does not trust the certificate 127.0.0.1:" in tls
    assert "fix: make the caBundle the CA that signed the serving certificate" in tls
    admission = line(output, "[FAIL] admission through the API server: ")
    assert "the API server cannot call the webhook for a dry-run Pod in namespace" in admission
    assert "x509" in admission
    assert admission.endswith(
        "fix: the caBundle does not match the serving certificate: see the certificate lines above"
    )


def test_a_webhook_that_is_down_fails_with_where_to_look(control_plane: ControlPlane, webhook: Served) -> None:
    url = f"https://127.0.0.1:{free_port()}/mutate"
    with configuration(control_plane, "entra-check-down", url=url, caBundle=ca_bundle(webhook.certs.joinpath(
            "ca.crt").read_bytes())) as name, fresh_namespace(control_plane, "down", {TEST_LABEL: name}):  # fmt: skip
        code, output = check(control_plane, "--webhook-configuration", name)
    assert code == 1
    down = line(output, f"[FAIL] webhook URL {url}: ")
    assert "no TLS answer from 127.0.0.1:" in down
    assert down.endswith("fix: start the webhook, or fix the URL in the webhook configuration")
    admission = line(output, "[FAIL] admission through the API server: ")
    assert "connection refused" in admission
    assert admission.endswith("fix: no webhook Pod answers: start it, or look at its Deployment and logs")


def test_a_configuration_without_ca_bundle_or_one_that_is_missing_fails(control_plane: ControlPlane) -> None:
    code, output = check(control_plane, "--webhook-configuration", "entra-check-absent")
    assert code == 1
    assert (
        "[FAIL] MutatingWebhookConfiguration entra-check-absent: not found: no Pod is sent to the webhook; fix: "
        "install the webhook (helm install, or kubectl apply -k manifests/...), or pass --webhook-configuration NAME"
    ) in output
    with configuration(control_plane, "entra-check-no-ca", url="https://127.0.0.1:1/mutate") as name:
        code, output = check(control_plane, "--webhook-configuration", name)
    assert code == 1
    assert (
        "[FAIL] webhook namespace.inject.entra.io: has no caBundle: the API server cannot trust the webhook's "
        "certificate; fix: self-managed mode writes it"
    ) in output


@pytest.fixture
def behind_a_service(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Path]]:
    """The webhook as an install runs it: a Service (whose Endpoints point at this machine), the serving
    certificate in its Secret, and a configuration that names the Service. Yields (namespace, configuration,
    the CA's directory)."""
    with fresh_namespace(control_plane, "svc-system") as namespace:
        service = "entra-check"
        certs = tmp_path_factory.mktemp("service-certs")
        ca = make_ca()
        write_bundle(certs, ca, make_serving(ca, [f"{service}.{namespace}.svc"], []))
        port = free_port()
        with serve(certs, tmp_path_factory.mktemp("service-webhook"), "--kubeconfig", str(control_plane.kubeconfig),
                   "--host", "0.0.0.0", port=port, verify=False):  # fmt: skip
            address = host_address()
            apply(
                control_plane,
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": service, "namespace": namespace},
                 "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}},
                {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": service, "namespace": namespace},
                 "subsets": [{"addresses": [{"ip": address, "targetRef": pod_at(control_plane, namespace, "webhook",
                                                                                address, {"https": port})}],
                              "ports": [{"name": "https", "port": port}]}]},
                tls_secret(namespace, certs),
            )  # fmt: skip
            # The API server's service proxy reads EndpointSlices, which the controller manager mirrors from the
            # Endpoints a moment later.
            slices = ("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")
            eventually(lambda: control_plane.kubectl(*slices, "-o", "name").stdout)
            reference = {"namespace": namespace, "name": service, "path": "/mutate", "port": 443}
            with configuration(control_plane, f"entra-check-{namespace}", service=reference,
                               caBundle=ca_bundle(ca.cert_pem)) as name:  # fmt: skip
                yield namespace, name, certs


def test_a_healthy_webhook_behind_a_service_checks_clean(
    control_plane: ControlPlane, behind_a_service: tuple[str, str, Path]
) -> None:
    namespace, name, _ = behind_a_service
    with fresh_namespace(control_plane, "via-service", {TEST_LABEL: name, "entra.io/inject": "enabled"}) as agents:
        code, output = check(control_plane, "--webhook-configuration", name, "--namespace", agents)
    assert code == 0, output
    assert (
        f"[ok  ] Service {namespace}/entra-check: 1 ready endpoint(s); /readyz through the API server answers 200"
    ) in output
    assert (
        f"[ok  ] Secret {namespace}/entra-webhook-tls: the caBundle trusts its certificate for "
        f"entra-check.{namespace}.svc"
    ) in output
    assert (
        f'[ok  ] admission through the API server: the webhook answered a dry-run Pod in namespace "{agents}" '
        "(namespace.inject.entra.io)"
    ) in output


def test_a_service_without_endpoints_or_with_a_certificate_of_another_ca_fails(
    control_plane: ControlPlane, behind_a_service: tuple[str, str, Path]
) -> None:
    namespace, name, _ = behind_a_service
    other = make_ca()
    pair = make_serving(other, [f"entra-check.{namespace}.svc"], [])
    control_plane.kubectl("patch", "secret", "entra-webhook-tls", "-n", namespace, "--type", "merge", "-p",
                          json.dumps({"data": {"tls.crt": base64.b64encode(pair.cert_pem).decode()}}))  # fmt: skip
    control_plane.kubectl("delete", "endpoints", "entra-check", "-n", namespace)
    with fresh_namespace(control_plane, "no-endpoints", {TEST_LABEL: name}):
        code, output = check(control_plane, "--webhook-configuration", name)
    assert code == 1
    assert (
        f"[FAIL] Service {namespace}/entra-check: no ready endpoint: no webhook Pod is ready, so Pods it selects "
        f"cannot be created; fix: kubectl -n {namespace} get pods,deployments; the webhook Pods' logs"
    ) in output
    assert (
        f"[FAIL] Secret {namespace}/entra-webhook-tls: the serving certificate is not signed by a CA in the caBundle"
    ) in output
    assert "[FAIL] admission through the API server: the API server cannot call the webhook" in output


def test_a_namespace_says_what_each_workload_s_pods_get_and_why(control_plane: ControlPlane, webhook: Served) -> None:
    del webhook
    with fresh_namespace(control_plane, "pods", {"entra.io/inject": "enabled"}) as ns:
        apply(control_plane, *unmanaged_config(ns), *[d for d in example_config(ns) if d["kind"] == "AgentIdentity"])
        apply(
            control_plane,
            deployment(ns, "named", {"entra.io/agent-identity": "sales-agent"}),
            deployment(ns, "bound", account="sales-agent"),
            deployment(ns, "typo", {"entra.io/agent-identity": "sales-agnt"}),
            deployment(ns, "nameless"),
            deployment(ns, "opted-out", labels={"entra.io/inject": "disabled"}),
            deployment(ns, "waiting", {"entra.io/agent-identity": "research-agent"}),
        )
        code, output = check(control_plane, "--webhook-configuration", WEBHOOK_CONFIG, "--namespace", ns)
    assert code == 1
    mode = "native" if control_plane.version >= (1, 29) else "container"
    assert (
        f'[ok  ] namespace "{ns}": entra.io/inject=enabled: every Pod is sent to the webhook '
        "(namespace.inject.entra.io), except Pods labelled entra.io/inject=disabled"
    ) in output, output
    assert (
        f'[ok  ] Deployment {ns}/named: its Pods get the sidecar: blueprint "sales", agent identity "sales-agent", '
        f"{mode} sidecar entra-sidecar"
    ) in output
    assert (
        f'[ok  ] Deployment {ns}/bound: its Pods get the sidecar: blueprint "sales", agent identity "sales-agent"'
        in output
    )
    assert (
        f'[FAIL] Deployment {ns}/typo: its Pods are denied: entra.io/agent-identity names "sales-agnt", but namespace '
        f'"{ns}" has no AgentIdentity of that name (have: research-agent, sales-agent); fix: the message says what '
        "to change"
    ) in output
    assert (
        f"[warn] Deployment {ns}/nameless: its Pods start without a sidecar: names no agent identity, so no sidecar "
        'was injected: add the entra.io/agent-identity annotation, or list service account "default" in an '
        "AgentIdentity's spec.serviceAccounts"
    ) in output
    assert (
        f"[ok  ] Deployment {ns}/opted-out: opted out (entra.io/inject=disabled): never sent to the webhook" in output
    )
    waiting = line(output, f"[FAIL] Deployment {ns}/waiting: its Pods are denied: ")
    assert 'AgentIdentity "research-agent" is managed by the controller and not ready yet' in waiting
    assert "(the controller has not reported on it yet (is `entra-webhook controller` running?))" in waiting


def test_an_unlabelled_namespace_says_nothing_is_sent_and_pods_made_before_the_label_need_a_restart(
    control_plane: ControlPlane, webhook: Served
) -> None:
    del webhook
    with fresh_namespace(control_plane, "plain") as ns:
        apply(control_plane, *unmanaged_config(ns), deployment(ns, "web", {"entra.io/agent-identity": "sales-agent"}))
        code, output = check(control_plane, "--webhook-configuration", WEBHOOK_CONFIG, "--namespace", ns)
        assert code == 0, output
        assert (
            f'[warn] namespace "{ns}": not labelled entra.io/inject=enabled: only Pods labelled '
            "entra.io/inject=enabled are sent to the webhook (pod.inject.entra.io); fix: kubectl label namespace "
            f"{ns} entra.io/inject=enabled"
        ) in output
        assert (
            f'[warn] Deployment {ns}/web: its Pods are never sent to the webhook: namespace "{ns}" is not labelled '
            f"entra.io/inject=enabled, nor are they; fix: kubectl label namespace {ns} entra.io/inject=enabled, or "
            "label the Pod template entra.io/inject=enabled"
        ) in output
        # Its Pod, made by the controller manager, has no sidecar; once the namespace is labelled, it says so.
        eventually(lambda: control_plane.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o", "name").stdout)
        control_plane.kubectl("label", "namespace", ns, "entra.io/inject=enabled")
        code, output = check(control_plane, "--webhook-configuration", WEBHOOK_CONFIG, "--namespace", ns)
    assert code == 0, output
    assert (
        f'[ok  ] Deployment {ns}/web: its Pods get the sidecar: blueprint "sales", agent identity "sales-agent"'
        in output
    )
    assert (
        f"[warn] Deployment {ns}/web: 1 of its 1 Pods run without the sidecar (made before it applied); fix: kubectl "
        f"rollout restart deployment/web -n {ns}"
    ) in output


def test_resources_that_name_what_does_not_exist_fail_naming_it(control_plane: ControlPlane, webhook: Served) -> None:
    del webhook
    blueprint = {"tenantId": GUID, "clientId": GUID}
    with fresh_namespace(control_plane, "refs") as ns:
        secret = {"clientSecret": {"secretName": "gone", "key": "k"}}
        keyless = {"clientSecret": {"secretName": "there", "key": "k"}}
        resources = [
            ("AgentBlueprint", "secretless", {**blueprint, "credential": secret}),
            ("AgentBlueprint", "keyless", {**blueprint, "credential": keyless}),
            ("AgentBlueprint", "legacy", {"envFrom": [{"configMapRef": {"name": "sidecar-config"}}]}),
            ("AgentIdentity", "orphan", {"blueprint": "nowhere", "clientId": GUID}),
            ("AgentIdentity", "blank", {"blueprint": "legacy", "clientId": GUID, "displayName": "   "}),
            ("AgentIdentity", "first", {"blueprint": "legacy", "clientId": GUID, "serviceAccounts": ["shared"]}),
            ("AgentIdentity", "second", {"blueprint": "legacy", "clientId": GUID, "serviceAccounts": ["shared"]}),
        ]
        apply(control_plane, *[resource(kind, name, spec, ns) for kind, name, spec in resources])
        other_key = {"name": "there", "namespace": ns}
        apply(control_plane, {"apiVersion": "v1", "kind": "Secret", "metadata": other_key, "stringData": {"o": "x"}})
        code, output = check(control_plane, "--webhook-configuration", WEBHOOK_CONFIG, "--namespace", ns)
    assert code == 1
    assert (
        f'[FAIL] AgentBlueprint {ns}/secretless: its client secret\'s Secret "gone" does not exist: its sidecars '
        f"cannot start (CreateContainerConfigError); fix: kubectl create secret generic gone -n {ns} "
        "--from-literal=k=..."
    ) in output
    assert (
        f'[FAIL] AgentBlueprint {ns}/keyless: Secret "there" has no key "k" (have: o): its sidecars cannot start; '
        "fix: add the key, or fix spec.credential.clientSecret.key"
    ) in output
    assert (
        f'[FAIL] AgentBlueprint {ns}/legacy: envFrom names ConfigMap "sidecar-config", which does not exist: its '
        f"sidecars cannot start; fix: create it in namespace {ns}, or mark it optional"
    ) in output
    assert (
        f'[FAIL] AgentIdentity {ns}/orphan: names blueprint "nowhere", which namespace "{ns}" has not: its Pods are '
        "denied; fix: create that AgentBlueprint, or fix spec.blueprint"
    ) in output
    assert (
        f"[FAIL] AgentIdentity {ns}/blank: invalid: spec.displayName: must hold 1 to 256 characters, got '   '; fix: "
        f"kubectl edit agentidentity blank -n {ns}; Pods naming it are denied until then"
    ) in output
    assert (
        f"[FAIL] service account {ns}/shared: listed in spec.serviceAccounts of several AgentIdentities (first, "
        "second): its Pods without an annotation are denied; fix: list it in one of them only"
    ) in output


def write_status(plane: ControlPlane, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    """What the controller writes, through the status subresource."""
    plural = {"AgentBlueprint": "agentblueprints", "AgentIdentity": "agentidentities"}[kind]
    answer, body = plane.request("PATCH", f"/apis/entra.io/v1alpha1/namespaces/{namespace}/{plural}/{name}/status",
                                 {"status": status}, content_type="application/merge-patch+json")  # fmt: skip
    assert answer == 200, body


def test_conditions_the_controller_wrote_are_reported_with_their_fix(control_plane: ControlPlane) -> None:
    with fresh_namespace(control_plane, "conditions") as ns:
        apply(control_plane, *unmanaged_config(ns))
        said = "blueprint sales lacks a federated credential for system:serviceaccount:x:y: add the one in its status"
        ready = {"type": "Ready", "status": "False", "reason": "TokenRefused", "message": said, "observedGeneration": 1}
        fit = {"type": "FederatedCredentialsFit", "status": "False", "reason": "LimitExceeded", "message": "21 needed"}
        write_status(control_plane, "AgentIdentity", ns, "sales-agent", {"conditions": [ready]})
        write_status(control_plane, "AgentBlueprint", ns, "sales", {"conditions": [{**fit, "observedGeneration": 1}]})
        control_plane.kubectl("patch", "agentblueprint", "sales", "-n", ns, "--type", "merge", "-p",
                              '{"spec": {"logLevel": "Debug"}}')  # fmt: skip
        code, output = check(control_plane, "--webhook-configuration", WEBHOOK_CONFIG, "--namespace", ns)
    assert code == 1
    assert (
        f"[FAIL] AgentIdentity {ns}/sales-agent: Ready=False (TokenRefused): {said}; fix: kubectl describe "
        f"agentidentity sales-agent -n {ns}"
    ) in output
    assert (
        f"[warn] AgentBlueprint {ns}/sales: FederatedCredentialsFit=False (LimitExceeded): 21 needed; fix: kubectl "
        f"describe agentblueprint sales -n {ns}"
    ) in output
    assert (
        f"[warn] AgentBlueprint {ns}/sales: its conditions are of generation 1, the resource is at 2: the controller "
        "has not caught up with its last change"
    ) in output


@contextlib.contextmanager
def running_controller(
    plane: ControlPlane, namespace: str, port: int, workdir: Path
) -> Iterator[subprocess.Popen[str]]:
    """The real controller, leading through a Lease in `namespace`; with no managed identity it never calls Graph."""
    command = [
        sys.executable, "-m", "webhook.cli", "controller",
        "--kubeconfig", str(plane.kubeconfig),
        "--namespace", namespace,
        "--lease-namespace", namespace,
        "--lease-name", "entra-check-controller",
        "--lease-seconds", "2",
        "--renew-seconds", "0.4",
        "--metrics-host", "0.0.0.0",
        "--metrics-port", str(port),
        "--graph-url", "https://127.0.0.1:1",
        "--token-file", str(workdir / "no-token"),
        "--issuer", "https://kubernetes.default.svc.cluster.local",
    ]  # fmt: skip
    with (workdir / "controller.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True,
                                   preexec_fn=DIE_WITH_PARENT)  # noqa: PLW1509 - one prepared prctl call  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_the_controller_s_lease_and_health_are_checked_through_the_api_server(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    lease = ("--lease-namespace", "", "--lease-name", "entra-check-controller")
    with fresh_namespace(control_plane, "leader") as ns:
        flags = [lease[0], ns, *lease[2:], "--namespace", ns, "--webhook-configuration", WEBHOOK_CONFIG]
        apply(control_plane, *unmanaged_config(ns))
        port = free_port()
        with running_controller(control_plane, ns, port, tmp_path) as process:
            holder = eventually(lambda: json.loads(control_plane.kubectl(
                "get", "lease", "entra-check-controller", "-n", ns, "-o", "json", "--ignore-not-found").stdout or "{}"
            ).get("spec", {}).get("holderIdentity"))  # fmt: skip
            code, output = check(control_plane, *flags)
            assert code == 0, output
            assert f"[ok  ] controller (Lease {ns}/entra-check-controller): leader {holder}, renewed " in output
            assert (
                f"[ok  ] controller leader {holder}: not a Pod in namespace {ns} (it runs outside the cluster): its "
                "Lease is its health"
            ) in output
            # In a cluster the leader is a Pod (its name is the identity's start): /healthz and /readyz through
            # the API server's Pod proxy.
            pod_name = holder.rsplit("_", 1)[0]
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", pod_name), f"host name {pod_name!r} is no Pod name"
            pod_at(control_plane, ns, pod_name, host_address(), {"metrics": port})
            _, output = check(control_plane, *flags)
            assert (
                f"[ok  ] controller leader {holder}: /healthz: leading; /readyz: leading, with agentblueprints and "
                "agentidentities listed"
            ) in output, output
            process.send_signal(signal.SIGKILL)  # gone without releasing the Lease
            stale = f"[FAIL] controller (Lease {ns}/entra-check-controller): leader {holder} has not renewed it for "
            output = eventually(lambda: said_once(control_plane, flags, stale))
    assert "(it lasts 2s): it stopped, or cannot reach the API server; fix: kubectl -n" in line(output, stale)


FILE = """\
apiVersion: entra.io/v1alpha1
kind: AgentIdentity
metadata: {name: nameless}
spec: {blueprint: sales}
---
apiVersion: entra.io/v1alpha1
kind: AgentIdentity
metadata: {name: fresh}
spec: {blueprint: sales, clientId: 0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f}
---
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: new-agent}
    spec:
      selector: {matchLabels: {app: new-agent}}
      template:
        metadata:
          labels: {app: new-agent}
          annotations: {entra.io/agent-identity: fresh}
        spec:
          containers: [{name: agent, image: example.com/agent:1.0}]
  - apiVersion: batch/v1
    kind: CronJob
    metadata: {name: nightly}
    spec:
      schedule: "0 3 * * *"
      jobTemplate:
        spec:
          template:
            metadata:
              annotations: {entra.io/agent-identity: sales-agent}
            spec:
              restartPolicy: Never
              containers: [{name: agent, image: example.com/agent:1.0}]
"""


def test_a_workload_file_says_what_its_pods_and_resources_would_get(
    control_plane: ControlPlane, webhook: Served, tmp_path: Path
) -> None:
    del webhook
    (tmp_path / "agents.yaml").write_text(FILE)
    with fresh_namespace(control_plane, "file", {"entra.io/inject": "enabled"}) as ns:
        apply(control_plane, *unmanaged_config(ns))
        code, output = check(control_plane, "--webhook-configuration", WEBHOOK_CONFIG, "--namespace", ns,
                             "-f", str(tmp_path / "agents.yaml"))  # fmt: skip
        stored = control_plane.kubectl("get", "agentidentities", "-n", ns, "-o", "name").stdout
    assert code == 1
    assert stored.split() == ["agentidentity.entra.io/sales-agent"]  # dry runs only: nothing of the file stored
    fix = "set spec.clientId (an existing agent identity) or spec.sponsors (to have one created)"
    nameless = line(output, f"[FAIL] AgentIdentity {ns}/nameless: ")
    if control_plane.version >= CEL_SINCE:
        assert nameless.startswith(f"[FAIL] AgentIdentity {ns}/nameless: the API server refuses it: ")
    else:
        assert nameless.startswith(f"[FAIL] AgentIdentity {ns}/nameless: this API server accepts it, but it is invalid")
    assert fix in nameless
    assert f"[ok  ] AgentIdentity {ns}/fresh: the API server accepts it" in output
    assert (
        f'[FAIL] Deployment {ns}/new-agent: its Pods are denied: entra.io/agent-identity names "fresh", but namespace '
        f'"{ns}" has no AgentIdentity of that name (have: sales-agent); fix: apply the file\'s fresh first (a dry run '
        "stores nothing)"
    ) in output
    assert (
        f'[ok  ] CronJob {ns}/nightly: its Pods get the sidecar: blueprint "sales", agent identity "sales-agent"'
        in output
    )


def test_inject_reads_the_blueprints_and_identities_from_the_cluster(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    with fresh_namespace(control_plane, "inject") as ns:
        apply(control_plane, *unmanaged_config(ns))
        (tmp_path / "web.yaml").write_text(
            yaml.safe_dump(deployment(ns, "web", {"entra.io/agent-identity": "sales-agent"}))
        )
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["inject", "-f", str(tmp_path / "web.yaml"), "--kubeconfig", str(control_plane.kubeconfig)])
    assert code == 0
    spec = yaml.safe_load(out.getvalue())["spec"]["template"]["spec"]
    native = control_plane.version >= (1, 29)  # the cluster's version, as the webhook reads it
    sidecars = spec.get("initContainers", []) if native else spec["containers"]
    assert sidecars[0]["name"] == "entra-sidecar"
    app = next(c for c in spec["containers"] if c["name"] == "app")
    assert {"name": "AGENT_IDENTITY_APP_ID", "value": "f3897825-fd03-45f5-90eb-fdbf26135650"} in app["env"]


def test_entra_commands_reads_the_blueprints_status_and_the_controller_s_directory_app_from_the_cluster(
    control_plane: ControlPlane,
) -> None:
    directory = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    with fresh_namespace(control_plane, "entra") as ns, fresh_namespace(control_plane, "entra-system") as system:
        apply(control_plane, *unmanaged_config(ns))
        subject = f"system:serviceaccount:{ns}:sales-agent"
        credential = {"name": "k8s", "issuer": "https://issuer.example", "subject": subject, "audience": "api://x"}
        write_status(control_plane, "AgentBlueprint", ns, "sales", {"federatedCredentials": [credential]})
        controller = deployment(system, "entra-webhook-controller", account="entra-webhook-controller")
        controller["spec"]["template"]["spec"]["containers"][0]["args"] = [
            "controller",
            f"--directory-client-id={directory}",
        ]
        apply(control_plane, controller)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["entra-commands", "--kubeconfig", str(control_plane.kubeconfig), "--namespace", ns,
                         "--controller-service-account", f"{system}:entra-webhook-controller"])  # fmt: skip
    assert code == 0
    script = out.getvalue()
    assert script.splitlines()[1].endswith(f"entra-commands from the cluster at {control_plane.server}.")
    assert (
        f"# AgentBlueprint {ns}/sales (app 2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a): 1 federated credential(s)" in script
    )
    assert f'"subject": "system:serviceaccount:{ns}:sales-agent"' in script
    assert f"# AgentBlueprint {ns}/support: not on workload identity federation" in script
    assert f"# The directory app (app {directory}): the controller signs in as it" in script
    assert f'"subject": "system:serviceaccount:{system}:entra-webhook-controller"' in script
    assert '"issuer": "https://issuer.example"' in script.split("# The directory app")[1]
