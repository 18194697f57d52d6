"""The soak's judgement of a stored Pod (`make soak`): it must hold the sidecar where the server's auto mode puts it."""

from __future__ import annotations

from typing import Any

from tests.soak.__main__ import IDENTITY_IDS, check

SIDECAR = {"name": "entra-sidecar", "image": "sidecar:1.0"}
IDENTITY = sorted(IDENTITY_IDS)[0]
APP = {"name": "app", "image": "agent:1.0", "env": [{"name": "AGENT_IDENTITY_APP_ID", "value": IDENTITY}]}


def stored(init: list[dict[str, Any]], containers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "Pod", "spec": {"initContainers": init, "containers": containers}}


def test_a_native_sidecar_first_in_init_containers_with_restart_policy_always_passes_on_a_native_server() -> None:
    assert check(201, stored([{**SIDECAR, "restartPolicy": "Always"}], [APP]), "native") == ""


def test_a_regular_container_sidecar_passes_on_a_server_without_native_sidecars() -> None:
    assert check(201, stored([], [SIDECAR, APP]), "container") == ""


def test_a_sidecar_in_the_wrong_place_for_the_server_is_a_failure_naming_the_layout() -> None:
    assert check(201, stored([], [SIDECAR, APP]), "native") == (
        "stored without the native sidecar: (initContainers, containers) ([], ['entra-sidecar', 'app'])"
    )
    assert check(201, stored([SIDECAR], [APP]), "native").startswith("stored without the native sidecar")  # no Always
    assert check(201, stored([{**SIDECAR, "restartPolicy": "Always"}], [APP]), "container").startswith(
        "stored without the container sidecar"
    )


def test_an_app_without_a_current_identity_id_is_a_failure() -> None:
    app = {**APP, "env": [{"name": "AGENT_IDENTITY_APP_ID", "value": "not-one-of-ours"}]}
    assert check(201, stored([], [SIDECAR, app]), "container") == "wrong identity id 'not-one-of-ours'"


def test_a_refused_creation_is_a_failure_with_the_api_servers_message() -> None:
    assert check(500, {"message": "Internal error occurred: failed calling webhook"}, "native") == (
        "500: Internal error occurred: failed calling webhook"
    )
