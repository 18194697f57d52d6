"""A real control plane (etcd, kube-apiserver, kube-controller-manager) and our webhook in front of it.

Everything here runs once per session: building the binaries (cached under ~/.cache), starting the
control plane on loopback, applying the CRDs, starting `entra-webhook serve --kubeconfig`, and
registering it with a MutatingWebhookConfiguration whose URL points at loopback.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.controlplane import REPO_ROOT, ControlPlane, build_binaries, start_control_plane
from tests.servers import Served, make_certs, serve
from webhook.certs import ca_bundle

CRDS = REPO_ROOT / "manifests" / "base" / "crds"
EXAMPLES = REPO_ROOT / "examples"
WEBHOOK_CONFIG = "entra-e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = start_control_plane(build_binaries(), tmp_path_factory.mktemp("control-plane"))
    try:
        plane.kubectl("apply", "-f", str(CRDS))
        plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("webhook-certs"))


def webhook_configuration(name: str, url: str, ca: bytes, **overrides: Any) -> dict[str, Any]:
    """The two entries of DESIGN section 3, as in manifests/, but calling a URL on loopback."""
    common = {
        "clientConfig": {"url": url, "caBundle": ca_bundle(ca)},
        "rules": [
            {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]},
        ],
        "sideEffects": "NoneOnDryRun",
        "reinvocationPolicy": "IfNeeded",
        "timeoutSeconds": 5,
        "failurePolicy": "Fail",
        "admissionReviewVersions": ["v1"],
        **overrides,
    }
    disabled = {"key": "entra.io/inject", "operator": "NotIn", "values": ["disabled"]}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "namespace.inject.entra.io",
                "namespaceSelector": {"matchLabels": {"entra.io/inject": "enabled"}},
                "objectSelector": {"matchExpressions": [disabled]},
                **common,
            },
            {
                "name": "pod.inject.entra.io",
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "entra.io/inject", "operator": "NotIn", "values": ["enabled", "disabled"]}
                    ]
                },
                "objectSelector": {"matchLabels": {"entra.io/inject": "enabled"}},
                **common,
            },
        ],
    }


def labelled_webhook(name: str, url: str, ca: bytes | None, label: str) -> dict[str, Any]:
    """One webhook entry, for namespaces labelled `label=yes` only: a test's own webhook beside the session's."""
    configuration = webhook_configuration(name, url, ca or b"")
    configuration["webhooks"] = configuration["webhooks"][:1]
    if ca is None:
        del configuration["webhooks"][0]["clientConfig"]["caBundle"]
    configuration["webhooks"][0]["namespaceSelector"] = {"matchLabels": {label: "yes"}}
    return configuration


@pytest.fixture(scope="session")
def webhook(control_plane: ControlPlane, certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("webhook")
    with serve(certs, workdir, "--kubeconfig", str(control_plane.kubeconfig), "--log-level", "DEBUG") as served:
        configuration = webhook_configuration(WEBHOOK_CONFIG, served.url + "/mutate", (certs / "ca.crt").read_bytes())
        apply(control_plane, configuration)
        yield served
        control_plane.kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK_CONFIG, "--ignore-not-found")


def apply(plane: ControlPlane, *documents: Any) -> None:
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))


def create(plane: ControlPlane, document: Any, *flags: str) -> tuple[dict[str, Any], str]:
    """Create through the API server; returns the object it stored and kubectl's stderr (warnings)."""
    result = plane.kubectl("create", "-f", "-", "-o", "json", *flags, input=json.dumps(document))
    return json.loads(result.stdout), result.stderr


def create_refused(plane: ControlPlane, document: Any) -> str:
    result = plane.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(document), check=False)
    assert result.returncode != 0, f"expected a refusal, got {result.stdout}"
    return result.stderr


def example_config(namespace: str) -> list[dict[str, Any]]:
    """examples/ blueprints and identity, moved to `namespace`, plus the service account they bind."""
    documents = []
    for name in ("blueprints.yaml", "identities.yaml"):
        for document in yaml.safe_load_all((EXAMPLES / name).read_text()):
            document["metadata"]["namespace"] = namespace
            documents.append(document)
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "sales-agent", "namespace": namespace},
    }
    return [*documents, account]


_numbers = itertools.count(1)


@pytest.fixture
def namespace(control_plane: ControlPlane, webhook: Served) -> Iterator[str]:
    """A fresh opted-in namespace holding the example blueprints and identity."""
    del webhook
    name = f"agents-{next(_numbers)}"
    labelled = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"entra.io/inject": "enabled"}},
    }
    apply(control_plane, labelled)
    wait_for_service_account(control_plane, name, "default")
    apply(control_plane, *example_config(name))
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false")


def wait_for_service_account(plane: ControlPlane, namespace: str, name: str) -> None:
    """ServiceAccount admission refuses Pods until the controller-manager has made the token Secret."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body = plane.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
        if status == 200 and body.get("secrets"):
            return
        time.sleep(0.1)
    raise AssertionError(f"service account {namespace}/{name} has no token secret after 30s")
