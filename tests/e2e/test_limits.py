"""Kubernetes' own limits, checked against the real API server: what it refuses, we deny first.

- the 256 KiB annotation budget: the API server's exact rule, and our denial just before it;
- `"annotations": null`: absent for the API server, and so for us;
- a webhook serving files (no cluster API) does not know the server's version: a native request
  gets a regular container, which every version accepts; with --kubeconfig it reads the version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import apply, create, create_refused, example_config, labelled_webhook, wait_for_service_account
from tests.e2e.controlplane import ControlPlane
from tests.e2e.test_injection import SIDECAR, containers, injected, layout, named
from tests.servers import Served, make_certs, serve
from webhook.core.budget import ANNOTATIONS_LIMIT

DRY_RUN = "?dryRun=All"


def plain_namespace(plane: ControlPlane, name: str, labels: dict[str, str] | None = None) -> str:
    apply(plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}})
    wait_for_service_account(plane, name, "default")
    return name


def annotations_of(total: int) -> dict[str, str]:
    """Annotations taking exactly `total` bytes, keys plus values."""
    return {"example.com/big": "x" * (total - len("example.com/big"))}


@pytest.mark.parametrize(("total", "accepted"), [(ANNOTATIONS_LIMIT, True), (ANNOTATIONS_LIMIT + 1, False)])
def test_the_api_server_takes_annotations_up_to_exactly_256_kib(
    control_plane: ControlPlane, total: int, accepted: bool
) -> None:
    namespace = plain_namespace(control_plane, "limits-plain")
    subject = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "budget-", "annotations": annotations_of(total)},
        "spec": {"containers": [{"name": "app", "image": "example.com/app:1.0"}]},
    }
    status, body = control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods{DRY_RUN}", subject)
    assert (status == 201) is accepted, body
    if not accepted:
        assert status == 422
        assert "metadata.annotations: Too long" in body["message"]  # the wording after it changed across versions
        assert "262144 bytes" in body["message"]


def test_a_pod_our_annotations_would_push_past_the_limit_is_denied_with_our_message(
    control_plane: ControlPlane, namespace: str
) -> None:
    # Once the API server's bare "metadata.annotations: Too long" after our patch; now our denial, before it.
    subject = named(namespace, "big-annotations")
    used = sum(len(key) + len(value) for key, value in subject["metadata"]["annotations"].items())
    subject["metadata"]["annotations"] |= annotations_of(ANNOTATIONS_LIMIT - 10 - used)  # 10 bytes to spare
    as_is = {**subject, "metadata": {key: value for key, value in subject["metadata"].items() if key != "namespace"}}
    plain = plain_namespace(control_plane, "limits-plain")
    status, body = control_plane.request("POST", f"/api/v1/namespaces/{plain}/pods{DRY_RUN}", as_is)
    assert status == 201, body  # the Pod as it is fits
    error = create_refused(control_plane, subject)
    assert f'denied the request: pod "big-annotations" in namespace "{namespace}": its annotations take ' in error
    assert "past Kubernetes' limit of 262,144 bytes for all keys and values: shorten or drop annotations" in error


def test_null_annotations_are_absent_and_the_pod_is_injected(control_plane: ControlPlane, namespace: str) -> None:
    subject: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "null-annotations", "namespace": namespace, "annotations": None},
        "spec": {"serviceAccountName": "sales-agent", "containers": [{"name": "app", "image": "example.com/a:1"}]},
    }
    stored, _ = create(control_plane, subject)
    assert layout(stored) == injected(control_plane, "app")
    assert json.loads(stored["metadata"]["annotations"]["entra.io/status"])["agentIdentity"] == "sales-agent"


@pytest.fixture
def file_config(tmp_path: Path) -> Path:
    """examples/ as files, moved to namespace `files`."""
    directory = tmp_path / "config"
    directory.mkdir()
    documents = [document for document in example_config("files") if document["kind"] != "ServiceAccount"]
    (directory / "config.yaml").write_text(yaml.safe_dump_all(documents))
    return directory


@pytest.fixture
def files_namespace(control_plane: ControlPlane) -> str:
    name = plain_namespace(control_plane, "files", {"e2e-files": "yes"})
    apply(control_plane, *(document for document in example_config(name) if document["kind"] == "ServiceAccount"))
    return name


@pytest.fixture(params=["files only", "files and kubeconfig"])
def file_webhook(
    request: pytest.FixtureRequest, control_plane: ControlPlane, file_config: Path, tmp_path: Path
) -> Iterator[tuple[Served, str]]:
    """`serve --config` (optionally with --kubeconfig), as the only webhook for namespaces labelled e2e-files."""
    certs = make_certs(tmp_path / "certs")
    args = ["--config", str(file_config), "--no-events"]
    if request.param == "files and kubeconfig":
        args += ["--kubeconfig", str(control_plane.kubeconfig)]
    with serve(certs, tmp_path, *args) as served:
        name = "entra-e2e-files"
        ca = (certs / "ca.crt").read_bytes()
        apply(control_plane, labelled_webhook(control_plane, name, served.url + "/mutate", ca, "e2e-files"))
        try:
            yield served, str(request.param)
        finally:
            control_plane.kubectl("delete", "mutatingwebhookconfiguration", name)


def test_a_file_config_webhook_never_makes_a_native_sidecar_the_server_refuses(
    control_plane: ControlPlane, file_webhook: tuple[Served, str], files_namespace: str
) -> None:
    # Once: `serve --config` knew no version, put the sidecar with probes in initContainers, and a 1.20 API
    # server refused the Pod ("must not be set for init containers").
    served, how = file_webhook
    known = how == "files and kubeconfig"
    subject = named(files_namespace, f"native-{'known' if known else 'unknown'}-version")
    subject["metadata"]["annotations"]["entra.io/sidecar-mode"] = "native"
    stored, warnings = create(control_plane, subject)
    serving: dict[str, Any] = next(json.loads(line) for line in served.logs().splitlines() if '"msg":"serving"' in line)
    assert serving["config"] == "FileSource"
    assert serving["server_version"] == (".".join(map(str, control_plane.version)) if known else None)
    if known and control_plane.version >= (1, 29):
        assert [c["name"] for c in stored["spec"]["initContainers"]] == [SIDECAR]
        return
    assert containers(stored) == [SIDECAR, "app"]
    assert "initContainers" not in stored["spec"]
    if known:
        assert "native sidecar requested, but the API server is 1.20" in warnings
    else:
        assert "native sidecar requested, but the API server's version is unknown" in warnings
        assert "declare the version with --server-version" in warnings
