"""A real control plane (etcd, kube-apiserver, kube-controller-manager) and our webhook in front of it.

Everything here runs once per session: building the binaries (cached under ~/.cache), starting the
control plane on loopback, applying the CRDs, starting `entra-webhook serve --kubeconfig`, and
registering it with a MutatingWebhookConfiguration whose URL points at loopback.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.controlplane import (
    REPO_ROOT,
    VERSIONS,
    ControlPlane,
    build_binaries,
    parse_version,
    start_control_plane,
)
from tests.image import IMAGE
from tests.servers import Served, make_certs, serve
from webhook.injector.certs import ca_bundle

CRDS = REPO_ROOT / "manifests" / "crds"
CEL_SINCE = (1, 25)  # x-kubernetes-validations in a CRD's schema (and in kubectl's own schema of a CRD)
EXAMPLES = REPO_ROOT / "examples"
WEBHOOK_CONFIG = "entra-e2e"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test here is e2e; one marked `kubernetes(since="1.25")` runs only on versions that have the feature,
    one marked `image` only against the image (ENTRA_WEBHOOK_IMAGE).

    The others are deselected (and counted as such), not skipped: the feature, or the image, is not there.
    """
    here = Path(__file__).parent
    kept, dropped = [], []
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
        marker = item.get_closest_marker("kubernetes")
        callspec = getattr(item, "callspec", None)
        version = callspec.params.get("control_plane") if callspec else None
        too_old = marker and version and parse_version(version) < parse_version(marker.kwargs["since"])
        if too_old or (item.get_closest_marker("image") and not IMAGE):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def kubernetes_versions() -> list[str]:
    """The versions to run on: all of VERSIONS, or those named in K8S (`K8S=1.36`, `K8S=1.20,1.36`)."""
    wanted = [part.strip() for part in os.environ.get("K8S", "").split(",") if part.strip()]
    unknown = sorted(set(wanted) - set(VERSIONS))
    if unknown:
        raise pytest.UsageError(f"K8S={','.join(unknown)}: the e2e suite runs on {', '.join(VERSIONS)}")
    return wanted or list(VERSIONS)


@pytest.fixture(scope="session", params=kubernetes_versions(), ids=lambda version: f"k8s-{version}")
def control_plane(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One control plane per version; pytest runs every e2e test on one before it starts the next."""
    version: str = request.param
    plane = start_control_plane(build_binaries(version), tmp_path_factory.mktemp(f"control-plane-{version}"), version)
    served = plane.server_version()["gitVersion"]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:  # shown in every run, not only with -s
        reporter.write_line(
            f"\ne2e: Kubernetes {served} (etcd, kube-apiserver, kube-controller-manager) at {plane.server}"
        )
    try:
        apply_crds(plane)
        yield plane
    finally:
        plane.stop()


def apply_crds(plane: ControlPlane) -> None:
    """`kubectl apply -k manifests/crds`, as the install docs say: before 1.25 kubectl's own schema of a CRD
    lacks x-kubernetes-validations, so its client-side validation is turned off (the server drops the rules)."""
    validate = ["--validate=false"] if plane.version < CEL_SINCE else []
    plane.kubectl("apply", *validate, "-k", str(CRDS))
    plane.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("webhook-certs"))


MANIFEST_WEBHOOKS = REPO_ROOT / "manifests" / "mutatingwebhookconfiguration.yaml"
MATCH_CONDITIONS_SINCE = (1, 30)


def webhook_configuration(
    name: str, url: str, ca: bytes, *, version: tuple[int, int], **overrides: Any
) -> dict[str, Any]:
    """The shipped MutatingWebhookConfiguration (selectors, conditions, policies), but calling `url` on loopback.

    `matchConditions` go only to servers that have them (GA in 1.30): older ones refuse the unknown field.
    """
    configuration: dict[str, Any] = yaml.safe_load(MANIFEST_WEBHOOKS.read_text())
    configuration["metadata"] = {"name": name}
    for hook in configuration["webhooks"]:
        hook["clientConfig"] = {"url": url, "caBundle": ca_bundle(ca)}
        if version < MATCH_CONDITIONS_SINCE:
            hook.pop("matchConditions", None)
        hook.update(overrides)
    return configuration


def labelled_webhook(plane: ControlPlane, name: str, url: str, ca: bytes | None, label: str) -> dict[str, Any]:
    """One webhook entry, for namespaces labelled `label=yes` only: a test's own webhook beside the session's."""
    configuration = webhook_configuration(name, url, ca or b"", version=plane.version)
    configuration["webhooks"] = configuration["webhooks"][:1]
    if ca is None:
        del configuration["webhooks"][0]["clientConfig"]["caBundle"]
    configuration["webhooks"][0]["namespaceSelector"] = {"matchLabels": {label: "yes"}}
    return configuration


@pytest.fixture(scope="session")
def webhook(control_plane: ControlPlane, certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("webhook")
    with serve(certs, workdir, "--kubeconfig", str(control_plane.kubeconfig), "--log-level", "DEBUG") as served:
        ca = (certs / "ca.crt").read_bytes()
        configuration = webhook_configuration(WEBHOOK_CONFIG, served.url + "/mutate", ca, version=control_plane.version)
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


def admissions(plane: ControlPlane, webhook: Served, namespace: str, name: str) -> list[str]:
    """The reasons of our admissions of Pod `name` (not dry runs), once every line logged so far is
    written: a dry-run marker Pod goes through the webhook after it, and the log is written in order."""
    marker = f"marker-{next(_numbers)}"
    document = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": marker, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "example.com/marker:1"}]},
    }
    create(plane, document, "--dry-run=server")
    deadline = time.monotonic() + 30
    while marker not in webhook.logs():
        if time.monotonic() > deadline:
            raise AssertionError(f"the webhook logged no admission of {marker} within 30s")
        time.sleep(0.05)
    records = [json.loads(line) for line in webhook.logs().splitlines() if '"msg":"admission"' in line]
    return [r["reason"] for r in records if (r["namespace"], r["pod"], r["dry_run"]) == (namespace, name, False)]


def opt_in(plane: ControlPlane, name: str) -> None:
    """Namespace `name`, labelled `entra.io/inject=enabled`, once Pods can be created in it (its default
    service account exists)."""
    labelled = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"entra.io/inject": "enabled"}},
    }
    apply(plane, labelled)
    wait_for_service_account(plane, name, "default")


@contextlib.contextmanager
def opted_in_namespace(plane: ControlPlane, prefix: str) -> Iterator[str]:
    """A fresh opted-in namespace, deleted (without waiting) afterwards."""
    name = f"{prefix}-{next(_numbers)}"
    opt_in(plane, name)
    try:
        yield name
    finally:
        plane.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def namespace(control_plane: ControlPlane, webhook: Served) -> Iterator[str]:
    """A fresh opted-in namespace holding the example blueprints and identity."""
    del webhook
    with opted_in_namespace(control_plane, "agents") as name:
        apply(control_plane, *example_config(name))
        yield name


def wait_for_service_account(plane: ControlPlane, namespace: str, name: str) -> None:
    """ServiceAccount admission refuses Pods until the account exists (and, before 1.24, its token Secret)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, body = plane.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}")
        if status == 200 and (body.get("secrets") or not plane.has_token_secrets):
            return
        time.sleep(0.1)
    raise AssertionError(f"service account {namespace}/{name} is not ready for Pods after 30s")


def deployment(
    namespace: str,
    name: str,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    account: str | None = None,
) -> dict[str, Any]:
    """A Deployment of one app container, its Pods labelled app=NAME (and `labels`), annotated, run as `account`."""
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "example.com/agent:1.0"}]}
    if account:
        spec["serviceAccountName"] = account
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, **(labels or {})}, "annotations": annotations or {}},
                "spec": spec,
            },
        },
    }
