"""What the real API server stores when Pods pass through the webhook (issue: the e2e suite)."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import (
    admissions,
    apply,
    create,
    create_refused,
    example_config,
    wait_for_service_account,
    webhook_configuration,
)
from tests.e2e.controlplane import REPO_ROOT, ControlPlane
from tests.servers import Served

SIDECAR = "entra-sidecar"
AGENT_ID = "f3897825-fd03-45f5-90eb-fdbf26135650"


def pod(namespace: str, name: str = "agent", annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "example.com/agent:1.0"}], **spec},
    }


def named(namespace: str, name: str = "agent", **spec: Any) -> dict[str, Any]:
    return pod(namespace, name, {"entra.io/agent-identity": "sales-agent"}, **spec)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def containers(stored: dict[str, Any]) -> list[str]:
    return [c["name"] for c in stored["spec"]["containers"]]


def layout(stored: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The names of (initContainers, containers) of a stored Pod."""
    return [c["name"] for c in stored["spec"].get("initContainers") or []], containers(stored)


def auto_mode(plane: ControlPlane) -> str:
    """What the webhook's `auto` mode picks on this API server."""
    return "native" if plane.version >= (1, 29) else "container"


def injected(
    plane: ControlPlane, *apps: str, init: tuple[str, ...] = (), mode: str | None = None
) -> tuple[list[str], list[str]]:
    """The layout an injected Pod has: the sidecar first in initContainers (native) or in containers."""
    if (mode or auto_mode(plane)) == "native":
        return [SIDECAR, *init], list(apps)
    return list(init), [SIDECAR, *apps]


def container(stored: dict[str, Any], name: str) -> dict[str, Any]:
    spec = stored["spec"]
    return next(c for c in [*(spec.get("initContainers") or []), *spec["containers"]] if c["name"] == name)


def has_sidecar(stored: dict[str, Any]) -> bool:
    return SIDECAR in [name for names in layout(stored) for name in names]


APP_ENV = {
    "SIDECAR_URL": "http://localhost:5000",
    "BLUEPRINT_APP_ID": "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a",
    "AGENT_IDENTITY_APP_ID": AGENT_ID,
}


def assert_native_sidecar(stored: dict[str, Any]) -> None:
    """Native placement as the API server stored it: first init container, restartPolicy Always, probes kept."""
    sidecar = stored["spec"]["initContainers"][0]
    assert sidecar["name"] == SIDECAR
    assert sidecar["restartPolicy"] == "Always"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert sidecar[probe]["httpGet"]["path"] == "/healthz"
    assert json.loads(stored["metadata"]["annotations"]["entra.io/status"])["mode"] == "native"


def eventually(check: Callable[[], Any], timeout: float = 60, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(interval)


def first_pod(plane: ControlPlane, namespace: str, selector: str) -> dict[str, Any] | None:
    """The first stored Pod matching `selector`, once a controller has made one."""
    listed = plane.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed.stdout)["items"]
    return items[0] if items else None


def dry_run_pod(plane: ControlPlane, document: dict[str, Any]) -> dict[str, Any]:
    stored, _ = create(plane, document, "--dry-run=server")
    return stored


def test_auto_mode_reads_the_server_version_once_and_picks_the_placement_it_supports(
    control_plane: ControlPlane, webhook: Served
) -> None:
    serving = next(json.loads(line) for line in webhook.logs().splitlines() if '"msg":"serving"' in line)
    version = ".".join(map(str, control_plane.version))
    # Native sidecars from 1.29 (GA and always on since 1.33); 1.20 would drop their restartPolicy.
    assert (serving["config"], serving["server_version"], serving["mode"]) == (
        "ClusterSource",
        version,
        auto_mode(control_plane),
    )


def test_a_bare_pod_is_stored_with_the_sidecar_and_app_env(control_plane: ControlPlane, namespace: str) -> None:
    stored, _ = create(control_plane, named(namespace))
    assert layout(stored) == injected(control_plane, "app")
    sidecar = container(stored, SIDECAR)
    assert env_of(sidecar)["AzureAd__ClientCredentials__0__SignedAssertionFileDiskPath"] == (
        "/var/run/secrets/entra.io/identity/token"
    )
    assert sidecar["startupProbe"]["httpGet"]["httpHeaders"] == [{"name": "Host", "value": "localhost"}]
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert env_of(container(stored, "app")) == APP_ENV
    token = next(v for v in stored["spec"]["volumes"] if v["name"] == "entra-identity-token")
    assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "api://AzureADTokenExchange"
    status = json.loads(stored["metadata"]["annotations"]["entra.io/status"])
    assert status["mode"] == auto_mode(control_plane)
    if auto_mode(control_plane) == "native":
        assert_native_sidecar(stored)
    else:
        assert "restartPolicy" not in sidecar
    assert stored["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == "app"


def test_a_deployment_s_pod_made_by_the_controller_manager_is_injected(
    control_plane: ControlPlane, namespace: str
) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "curl-agent", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "curl-agent"}},
            "template": {
                "metadata": {"labels": {"app": "curl-agent"}},
                "spec": {
                    "serviceAccountName": "sales-agent",
                    "containers": [{"name": "agent", "image": "curlimages/curl:8.10.1"}],
                },
            },
        },
    }
    wait_for_service_account(control_plane, namespace, "sales-agent")
    apply(control_plane, deployment)

    stored = eventually(lambda: first_pod(control_plane, namespace, "app=curl-agent"))
    assert stored["metadata"]["name"].startswith("curl-agent-")  # only generateName at admission
    assert stored["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert layout(stored) == injected(control_plane, "agent")
    assert env_of(container(stored, "agent"))["AGENT_IDENTITY_APP_ID"] == AGENT_ID  # bound by service account
    if auto_mode(control_plane) == "native":
        assert_native_sidecar(stored)


def _job_template(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"annotations": annotations or {"entra.io/agent-identity": "sales-agent"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "task", "image": "example.com/task:1"}]},
    }


def test_a_job_s_pod_is_injected_and_warned_about_completion_only_without_native_sidecars(
    control_plane: ControlPlane, namespace: str
) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "one-shot", "namespace": namespace},
        "spec": {"template": _job_template()},
    }
    apply(control_plane, job)

    stored = eventually(lambda: first_pod(control_plane, namespace, "job-name=one-shot"))
    assert layout(stored) == injected(control_plane, "task")
    _, warnings = create(control_plane, named(namespace, "direct-job-pod", restartPolicy="Never"))
    if auto_mode(control_plane) == "native":
        assert_native_sidecar(stored)  # a native sidecar stops with the Job's last container
        assert "Job never completes" not in warnings
    else:
        assert "a Job never completes" in warnings


def test_a_cronjob_s_job_gets_its_pod_injected(control_plane: ControlPlane, namespace: str) -> None:
    cronjob = {
        "apiVersion": "batch/v1" if control_plane.version >= (1, 21) else "batch/v1beta1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": namespace},
        "spec": {"schedule": "0 3 * * *", "suspend": True, "jobTemplate": {"spec": {"template": _job_template()}}},
    }
    apply(control_plane, cronjob)
    # What the CronJob controller does at 03:00, now: a Job from the CronJob's template.
    control_plane.kubectl("create", "job", "nightly-now", "--from=cronjob/nightly", "-n", namespace)

    stored = eventually(lambda: first_pod(control_plane, namespace, "job-name=nightly-now"))
    assert stored["metadata"]["ownerReferences"][0]["kind"] == "Job"
    assert layout(stored) == injected(control_plane, "task")
    assert env_of(container(stored, "task")) == APP_ENV
    if auto_mode(control_plane) == "native":
        assert_native_sidecar(stored)


def test_existing_env_volumes_and_init_containers_are_kept(control_plane: ControlPlane, namespace: str) -> None:
    document = named(
        namespace,
        initContainers=[{"name": "setup", "image": "example.com/setup:1", "env": [{"name": "A", "value": "1"}]}],
        volumes=[{"name": "data", "emptyDir": {}}],
    )
    document["spec"]["containers"][0]["env"] = [{"name": "SIDECAR_URL", "value": "http://localhost:7000"}]
    document["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    stored, _ = create(control_plane, document)
    assert layout(stored) == injected(control_plane, "app", init=("setup",))
    if auto_mode(control_plane) == "native":
        assert_native_sidecar(stored)
        assert env_of(container(stored, "setup")) == {"A": "1", **APP_ENV}  # runs after a native sidecar
    else:
        assert env_of(container(stored, "setup")) == {"A": "1"}  # runs before a regular-container sidecar
    app = container(stored, "app")
    assert env_of(app)["SIDECAR_URL"] == "http://localhost:7000"
    assert env_of(app)["AGENT_IDENTITY_APP_ID"] == AGENT_ID
    assert {"name": "data", "mountPath": "/data"} in app["volumeMounts"]
    names = [v["name"] for v in stored["spec"]["volumes"]]
    assert names[0] == "data"
    assert {"entra-sidecar-tmp", "entra-sidecar-keys", "entra-identity-token"} <= set(names)


def test_a_pod_naming_an_unknown_identity_is_denied_with_the_fix(control_plane: ControlPlane, namespace: str) -> None:
    document = pod(namespace, "typo", {"entra.io/agent-identity": "sales-agnt"})
    error = create_refused(control_plane, document)
    assert 'admission webhook "namespace.inject.entra.io" denied the request' in error
    assert (
        f'pod "typo" in namespace "{namespace}": entra.io/agent-identity names "sales-agnt", but namespace '
        f'"{namespace}" has no AgentIdentity of that name (have: research-agent, sales-agent)'
    ) in error


def test_an_opted_out_pod_is_not_injected(control_plane: ControlPlane, namespace: str) -> None:
    document = named(namespace, "opted-out")
    document["metadata"]["labels"] = {"entra.io/inject": "disabled"}
    stored, _ = create(control_plane, document)
    assert layout(stored) == ([], ["app"])
    assert "entra.io/status" not in stored["metadata"]["annotations"]


def test_a_pod_in_an_unlabelled_namespace_is_not_sent_to_the_webhook(
    control_plane: ControlPlane, webhook: Served
) -> None:
    del webhook
    apply(control_plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plain"}})
    wait_for_service_account(control_plane, "plain", "default")
    stored, warnings = create(control_plane, named("plain"))
    assert layout(stored) == ([], ["app"])
    assert warnings == ""


def test_a_pod_label_opts_in_outside_a_labelled_namespace(control_plane: ControlPlane, webhook: Served) -> None:
    del webhook
    apply(control_plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "by-pod-label"}})
    wait_for_service_account(control_plane, "by-pod-label", "default")
    apply(control_plane, *example_config("by-pod-label"))
    document = named("by-pod-label")
    document["metadata"]["labels"] = {"entra.io/inject": "enabled"}
    stored, _ = create(control_plane, document)
    assert layout(stored) == injected(control_plane, "app")


def test_a_pod_created_right_after_its_identity_is_injected(control_plane: ControlPlane, namespace: str) -> None:
    identity = {
        "apiVersion": "entra.io/v1alpha1",
        "kind": "AgentIdentity",
        "metadata": {"name": "brand-new", "namespace": namespace},
        "spec": {"blueprint": "sales", "clientId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
    }
    document = pod(namespace, "right-after", {"entra.io/agent-identity": "brand-new"})
    control_plane.kubectl("create", "-f", "-", input=json.dumps(identity))
    stored, _ = create(control_plane, document)  # no wait: the watch may not have seen it yet
    assert env_of(container(stored, "app"))["AGENT_IDENTITY_APP_ID"] == "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_an_edited_identity_is_used_without_a_restart(control_plane: ControlPlane, namespace: str) -> None:
    new_id = "99999999-8888-4777-8666-555555555555"
    patch = json.dumps({"spec": {"clientId": new_id}})
    control_plane.kubectl("patch", "agentidentity", "sales-agent", "-n", namespace, "--type=merge", "-p", patch)

    def new_id_used() -> bool:
        stored = dry_run_pod(control_plane, named(namespace, "after-edit"))
        return env_of(container(stored, "app")).get("AGENT_IDENTITY_APP_ID") == new_id

    eventually(new_id_used, timeout=30)


class _LateContainerWebhook(BaseHTTPRequestHandler):
    """A second mutating webhook that adds a container after ours ran, as a mesh injector would."""

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        names = [c["name"] for c in request["object"]["spec"]["containers"]]
        response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
        if "late-proxy" not in names:
            ops = [{"op": "add", "path": "/spec/containers/-", "value": {"name": "late-proxy", "image": "proxy:1"}}]
            response |= {"patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(ops).encode()).decode()}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        del args


@pytest.fixture
def late_webhook(control_plane: ControlPlane, certs: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LateContainerWebhook)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "tls.crt", certs / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/"
    # Named after ours, so the API server calls it second; scoped to namespaces labelled for this test.
    ca = (certs / "ca.crt").read_bytes()
    configuration = webhook_configuration("zz-late-container", url, ca, version=control_plane.version)
    configuration["webhooks"] = configuration["webhooks"][:1]
    configuration["webhooks"][0]["name"] = "late.example.com"
    configuration["webhooks"][0]["reinvocationPolicy"] = "Never"
    configuration["webhooks"][0]["namespaceSelector"] = {"matchLabels": {"e2e-late-container": "yes"}}
    apply(control_plane, configuration)
    try:
        yield url
    finally:
        control_plane.kubectl("delete", "mutatingwebhookconfiguration", "zz-late-container")
        server.shutdown()


def test_a_container_added_by_a_later_webhook_gets_env_on_reinvocation(
    control_plane: ControlPlane, namespace: str, late_webhook: str, webhook: Served
) -> None:
    del late_webhook
    control_plane.kubectl("label", "namespace", namespace, "e2e-late-container=yes")
    stored, _ = create(control_plane, named(namespace, "reinvoked"))
    # reinvocationPolicy IfNeeded: called again because the later webhook changed the Pod.
    assert admissions(control_plane, webhook, namespace, "reinvoked") == ["injected", "reinvoked"]
    assert layout(stored) == injected(control_plane, "app", "late-proxy")
    assert env_of(container(stored, "late-proxy")) == APP_ENV
    assert env_of(container(stored, "app")) == APP_ENV
    if auto_mode(control_plane) == "native":
        assert_native_sidecar(stored)


def test_the_webhook_survives_an_api_server_restart_and_resyncs(
    control_plane: ControlPlane, namespace: str, webhook: Served
) -> None:
    control_plane.restart_apiserver()
    # Answered from the cache: the identity was listed before the restart.
    stored, _ = create(control_plane, named(namespace, "after-restart"))
    assert layout(stored) == injected(control_plane, "app")
    # Re-synced: a binding by service account is only known through the watch (no live lookup for it).
    apply(
        control_plane,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "late-sa", "namespace": namespace}},
        {
            "apiVersion": "entra.io/v1alpha1",
            "kind": "AgentIdentity",
            "metadata": {"name": "late-bound", "namespace": namespace},
            "spec": {
                "blueprint": "sales",
                "clientId": "12121212-3434-4565-8787-909090909090",
                "serviceAccounts": ["late-sa"],
            },
        },
    )
    wait_for_service_account(control_plane, namespace, "late-sa")
    unannotated = pod(namespace, "bound-after-restart", serviceAccountName="late-sa")
    eventually(lambda: has_sidecar(dry_run_pod(control_plane, unannotated)), timeout=60)
    assert webhook.process.poll() is None
    assert "watch of agent" in webhook.logs()  # the outage was seen and recovered from
    metrics = webhook.metrics()
    assert 'entra_webhook_watch_restarts_total{reason="error",resource="agentidentities"}' in metrics
    # It resumed from its resourceVersion, which the restarted server no longer had: 410, then a re-list.
    assert 'entra_webhook_watch_restarts_total{reason="gone",resource="agentidentities"}' in metrics


def _pod_from_template(template: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    metadata = {**template["metadata"], "name": name, "namespace": namespace}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def _service_account_volume(name: str) -> bool:
    """ServiceAccount admission's volume, named with a random suffix: `<sa>-token-*` (1.20), `kube-api-access-*`."""
    return "-token-" in name or name.startswith("kube-api-access-")


def _without_token_volume(spec: dict[str, Any]) -> dict[str, Any]:
    spec = json.loads(json.dumps(spec))
    spec["volumes"] = [v for v in spec["volumes"] if not _service_account_volume(v["name"])]
    for item in [*spec.get("initContainers", []), *spec["containers"]]:
        item["volumeMounts"] = [m for m in item.get("volumeMounts", []) if not _service_account_volume(m["name"])]
    return spec


def test_offline_inject_of_the_examples_is_accepted_and_equals_the_webhook_s_result(
    control_plane: ControlPlane, webhook: Served
) -> None:
    del webhook
    examples = REPO_ROOT / "examples"
    # Offline there is no server to ask: told the version, `auto` places the sidecar as the webhook does here.
    version = ".".join(map(str, control_plane.version))
    command = ["inject", "-f", str(examples / "agent.yaml"), "--config", str(examples), "--server-version", version]
    offline = subprocess.run(
        [sys.executable, "-m", "webhook.cli", *command],
        capture_output=True,
        text=True,
        check=True,
    )
    deployment = next(doc for doc in yaml.safe_load_all(offline.stdout) if doc["kind"] == "Deployment")
    source = list(yaml.safe_load_all((examples / "agent.yaml").read_text()))
    original = next(doc for doc in source if doc["kind"] == "Deployment")

    # The webhook's way: the namespace and config from examples/, and the raw template as a Pod.
    for name in ("namespace.yaml", "blueprints.yaml", "identities.yaml"):
        control_plane.kubectl("apply", "-f", str(examples / name))
    apply(control_plane, next(doc for doc in source if doc["kind"] == "ServiceAccount"))
    wait_for_service_account(control_plane, "agents", "sales-agent")
    by_webhook = dry_run_pod(control_plane, _pod_from_template(original["spec"]["template"], "agents", "check"))

    # The offline way: the injected Deployment is valid as it is, and so is its template as a Pod.
    result = control_plane.kubectl("apply", "-f", "-", "--dry-run=server", input=yaml.safe_dump(deployment))
    assert "deployment.apps/curl-agent created (server dry run)" in result.stdout
    apply(control_plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "offline"}})
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sales-agent", "namespace": "offline"},
    }
    apply(control_plane, account)
    wait_for_service_account(control_plane, "offline", "sales-agent")
    by_cli = dry_run_pod(control_plane, _pod_from_template(deployment["spec"]["template"], "offline", "check"))

    assert layout(by_cli) == injected(control_plane, "agent")
    assert _without_token_volume(by_cli["spec"]) == _without_token_volume(by_webhook["spec"])
    assert by_cli["metadata"]["annotations"] == by_webhook["metadata"]["annotations"]


def test_a_mirror_pod_is_never_sent_to_the_webhook_where_match_conditions_exist(
    control_plane: ControlPlane, namespace: str, webhook: Served
) -> None:
    document = named(namespace, "static-web", nodeName="node-1")  # what a kubelet sends for a static Pod
    document["metadata"]["annotations"]["kubernetes.io/config.mirror"] = "mirror-hash"
    stored, warnings = create(control_plane, document)
    assert layout(stored) == ([], ["app"])
    called = '"pod":"static-web"' in webhook.logs()
    if control_plane.version >= (1, 30):
        # The API server evaluated the manifests' matchConditions and never called the webhook.
        assert (called, warnings) == (False, "")
    else:
        # No matchConditions here: the webhook is called, and skips the Pod itself, with a warning.
        assert called
        assert "static (mirror) pods are never injected" in warnings
