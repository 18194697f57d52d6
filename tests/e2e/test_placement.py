"""Where the sidecar goes, as the API server stores it: native or regular, and under Pod Security admission."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import apply, create, create_refused, example_config, wait_for_service_account
from tests.e2e.controlplane import ControlPlane
from tests.e2e.test_injection import (
    APP_ENV,
    SIDECAR,
    assert_native_sidecar,
    container,
    env_of,
    injected,
    layout,
    named,
)
from tests.servers import Served


def test_the_container_annotation_puts_the_sidecar_in_containers_on_every_version(
    control_plane: ControlPlane, namespace: str
) -> None:
    document = named(namespace, "regular")
    document["metadata"]["annotations"]["entra.io/sidecar-mode"] = "container"
    stored, warnings = create(control_plane, document)
    assert layout(stored) == injected(control_plane, "app", mode="container")
    assert "restartPolicy" not in container(stored, SIDECAR)
    assert env_of(container(stored, "app")) == APP_ENV
    assert warnings == ""


def test_the_native_annotation_is_honoured_where_supported_and_falls_back_with_a_warning_before_1_29(
    control_plane: ControlPlane, namespace: str
) -> None:
    document = named(namespace, "native", initContainers=[{"name": "setup", "image": "example.com/setup:1"}])
    document["metadata"]["annotations"]["entra.io/sidecar-mode"] = "native"
    stored, warnings = create(control_plane, document)
    if control_plane.version >= (1, 29):
        assert layout(stored) == injected(control_plane, "app", init=("setup",), mode="native")
        assert_native_sidecar(stored)
        assert env_of(container(stored, "setup")) == APP_ENV
        assert warnings == ""
    else:
        # 1.20 would drop restartPolicy and keep an init container that never exits: a regular one instead.
        assert layout(stored) == injected(control_plane, "app", init=("setup",), mode="container")
        assert "restartPolicy" not in container(stored, SIDECAR)
        assert "native sidecar requested, but the API server is 1.20" in warnings
        assert "injected as a regular container" in warnings


RESTRICTED_CONTEXT = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _pod_security_namespace(plane: ControlPlane, level: str) -> str:
    name = f"pss-{level}"
    labels = {
        "entra.io/inject": "enabled",
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    apply(plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
    wait_for_service_account(plane, name, "default")
    apply(plane, *example_config(name))
    return name


def _compliant_agent(namespace: str, name: str, mode: str) -> dict[str, Any]:
    document = named(namespace, name)
    document["metadata"]["annotations"]["entra.io/sidecar-mode"] = mode
    document["spec"]["containers"][0]["securityContext"] = dict(RESTRICTED_CONTEXT)
    return document


@pytest.mark.kubernetes(since="1.25")  # PodSecurity admission is GA (and on by default) from 1.25
@pytest.mark.parametrize("level", ["restricted", "baseline"])
@pytest.mark.parametrize("mode", ["native", "container"])
def test_pod_security_admits_the_injected_sidecar_and_its_volumes(
    control_plane: ControlPlane, webhook: Served, level: str, mode: str
) -> None:
    del webhook
    namespace = _pod_security_namespace(control_plane, level)
    stored, warnings = create(control_plane, _compliant_agent(namespace, f"agent-{mode}", mode))
    assert layout(stored) == injected(control_plane, "app", mode=mode)
    volumes = {volume["name"] for volume in stored["spec"]["volumes"]}
    assert {"entra-identity-token", "entra-sidecar-tmp", "entra-sidecar-keys"} <= volumes
    assert warnings == ""


@pytest.mark.kubernetes(since="1.25")
def test_pod_security_still_refuses_a_non_compliant_app_container_next_to_the_sidecar(
    control_plane: ControlPlane, webhook: Served
) -> None:
    """The control for the test above: enforcement is on, and it blames the app, not the sidecar."""
    del webhook
    namespace = _pod_security_namespace(control_plane, "restricted")
    error = create_refused(control_plane, named(namespace, "non-compliant"))
    assert 'violates PodSecurity "restricted:latest"' in error
    assert 'container "app"' in error
    assert SIDECAR not in error
