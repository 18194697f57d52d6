"""Both processes run from the image as the chart deploys them: collected only with ENTRA_WEBHOOK_IMAGE set
(`make e2e-image`), beside the injection and controller e2e tests, which then run against the image too."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

import webhook
from scripts.sbom import LOCK, bom, in_image, read_lock, release_time
from tests.e2e.conftest import apply
from tests.e2e.test_controller import Cluster, cluster, controller, managed, namespace, wait_ready, workload_blueprint
from tests.e2e.test_injection import eventually
from tests.image import IMAGE, UID, buildah, innermost, root
from tests.servers import Served

pytestmark = pytest.mark.image
__all__ = ["cluster", "namespace"]  # the controller tests' fixtures, used here as there


def confinement(process: subprocess.Popen[str]) -> tuple[str, list[str], list[str], str]:
    """The running entra-webhook's command line, its uid map, its root's mount options, and its effective
    capabilities, read from /proc."""
    proc = Path(f"/proc/{innermost(process.pid)}")
    command = proc.joinpath("cmdline").read_bytes().decode().split("\0")
    uid_map = [" ".join(line.split()) for line in proc.joinpath("uid_map").read_text().splitlines()]
    (root,) = [line.split()[5].split(",") for line in proc.joinpath("mountinfo").read_text().splitlines()
               if line.split()[4] == "/"]  # fmt: skip
    capabilities = next(line.split()[1] for line in proc.joinpath("status").read_text().splitlines()
                        if line.startswith("CapEff:"))  # fmt: skip
    return " ".join(command), uid_map, root, capabilities


def test_the_webhook_serves_from_the_image_as_uid_65532_on_a_read_only_root(webhook: Served) -> None:
    command, uid_map, root, capabilities = confinement(webhook.process)
    assert command.startswith("/opt/venv/bin/python /opt/venv/bin/entra-webhook serve ")
    assert f"{UID} 0 1" in uid_map  # uid 65532 in the container, the harness's user outside
    assert "ro" in root
    assert int(capabilities, 16) == 0


def test_the_controller_provisions_from_the_image_as_uid_65532_on_a_read_only_root(
    cluster: Cluster, namespace: str
) -> None:
    workload_blueprint(cluster, namespace)
    with controller(cluster, namespace) as running:
        eventually(lambda: "leading" in running.logs())
        command, uid_map, root, capabilities = confinement(running.process)
        assert command.startswith("/opt/venv/bin/python /opt/venv/bin/entra-webhook controller ")
        assert f"{UID} 0 1" in uid_map
        assert "ro" in root
        assert int(capabilities, 16) == 0
        apply(cluster.plane, managed(cluster, namespace, "from-the-image"))
        assert wait_ready(cluster.plane, namespace, "from-the-image")["status"]["clientId"]


def test_the_image_is_labelled_with_the_package_version() -> None:
    # The whole record: Debian's buildah (1.28) has no `json` template function for --format.
    labels = json.loads(buildah("inspect", "--type", "image", IMAGE))["OCIv1"]["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == webhook.__version__


def test_the_release_sbom_lists_exactly_the_python_packages_installed_in_the_image() -> None:
    site = next((root() / "opt" / "venv" / "lib").glob("python3*/site-packages"))
    installed = {
        (canonicalize_name(name), version)
        for name, version in (d.name.removesuffix(".dist-info").rsplit("-", 1) for d in site.glob("*.dist-info"))
    }
    document = bom(in_image(read_lock(LOCK.read_text())), webhook.__version__, release_time())
    listed = {(c["name"], c["version"]) for c in document["components"]}
    assert installed == listed | {("entra-agent-webhook", webhook.__version__)}
