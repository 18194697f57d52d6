"""One webhook call per Pod, and a sidecar that holds no Kubernetes API token (issue 16).

The API server re-runs its built-in mutating plugins after a webhook changed a Pod; the ServiceAccount
plugin would then mount the API token into our new sidecar, changing the Pod, and `reinvocationPolicy:
IfNeeded` would call us a second time. The sidecar's own read-only mount at the token path makes the
plugin leave it alone (docs/concepts/service-account-token.md), on 1.20 and 1.36 alike.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import admissions, apply, create, wait_for_service_account
from tests.e2e.controlplane import ControlPlane
from tests.e2e.test_injection import APP_ENV, SIDECAR, container, env_of, injected, layout, named
from tests.servers import Served

API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EMPTY = "entra-sidecar-no-api-token"


def token_mounts(item: dict[str, Any]) -> list[str]:
    """The names of the volumes a container mounts at the API token path."""
    return [mount["name"] for mount in item.get("volumeMounts") or [] if mount["mountPath"] == API_TOKEN_DIR]


def volume(stored: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in stored["spec"]["volumes"] if v["name"] == name)
    return found


def is_api_token(source: dict[str, Any]) -> bool:
    """A service-account token Secret (1.20) or a projected token for the API server itself (1.21+
    `kube-api-access-*`: no audience; the sidecar's Entra token names its own)."""
    projected = source.get("projected", {}).get("sources", [])
    tokens = [item["serviceAccountToken"] for item in projected if "serviceAccountToken" in item]
    return "secret" in source or any("audience" not in token for token in tokens)


@pytest.mark.parametrize("automount", ["default", "pod-off", "account-off"])
def test_a_pod_is_admitted_once_and_only_its_app_gets_the_api_token(
    control_plane: ControlPlane, namespace: str, webhook: Served, automount: str
) -> None:
    name = f"once-{automount}"
    document = named(namespace, name)
    if automount == "pod-off":
        document["spec"]["automountServiceAccountToken"] = False
    if automount == "account-off":
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet", "namespace": namespace}}
        apply(control_plane, {**account, "automountServiceAccountToken": False})
        wait_for_service_account(control_plane, namespace, "quiet")
        document["spec"]["serviceAccountName"] = "quiet"
    stored, _ = create(control_plane, document)

    assert admissions(control_plane, webhook, namespace, name) == ["injected"]
    assert layout(stored) == injected(control_plane, "app")
    assert env_of(container(stored, "app")) == APP_ENV
    # The sidecar's mount at the token path is our empty directory, read-only: no API token.
    sidecar = container(stored, SIDECAR)
    assert token_mounts(sidecar) == [EMPTY]
    assert next(m for m in sidecar["volumeMounts"] if m["name"] == EMPTY)["readOnly"] is True
    assert volume(stored, EMPTY) == {"name": EMPTY, "emptyDir": {}}
    app_mounts = token_mounts(container(stored, "app"))
    if automount == "default":
        # The app keeps the token the ServiceAccount plugin mounted before our webhook was called.
        assert len(app_mounts) == 1
        assert is_api_token(volume(stored, app_mounts[0]))
    else:
        assert app_mounts == []
        assert not any(is_api_token(v) for v in stored["spec"]["volumes"])
