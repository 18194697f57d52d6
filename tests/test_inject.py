"""The planner: JSON Pointer escaping of annotation keys (RFC 6901), and the exact ops `plan` writes."""

from __future__ import annotations

from typing import Any

import jsonpatch
import orjson

from tests.conftest import resource
from webhook.common.models import AgentBlueprint, AgentIdentity, parse_object
from webhook.core.encoded import escape
from webhook.core.index import ConfigIndex
from webhook.core.inject import Conflict, Plan, plan
from webhook.core.placement import Mode
from webhook.core.pod import PodOptions
from webhook.core.rendered import Rendered
from webhook.core.resolve import Resolved
from webhook.core.settings import Settings
from webhook.core.sidecar import (
    API_TOKEN_DIR,
    NO_API_TOKEN_VOLUME,
    blueprint_app_env,
    identity_app_env,
    sidecar_container,
    sidecar_volumes,
    status_annotation,
)


def test_tilde_is_escaped_before_slash() -> None:
    assert escape("entra.io/status") == "entra.io~1status"
    assert escape("a~1/b") == "a~01~1b"


def test_an_escaped_key_adds_exactly_that_key() -> None:
    pod: dict[str, Any] = {"metadata": {"annotations": {}}}
    key = "odd~key/with~1parts"
    patched = jsonpatch.apply_patch(pod, [{"op": "add", "path": f"/metadata/annotations/{escape(key)}", "value": "v"}])
    assert patched["metadata"]["annotations"] == {key: "v"}


# plan(): the exact ops a Pod gets, in order, and their count.

SALES = {
    "tenantId": "7a1c2f0e-4b5d-4c3e-9f00-123456789abc",
    "clientId": "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a",
    "credential": {"workloadIdentity": {}},
}
AGENT = {"blueprint": "sales", "clientId": "f3897825-fd03-45f5-90eb-fdbf26135650"}
INDEX = ConfigIndex.of(
    [parse_object(resource("AgentBlueprint", "sales", SALES)), parse_object(resource("AgentIdentity", "a", AGENT))]
)


def _resolved() -> Resolved:
    blueprint, identity = INDEX.get("AgentBlueprint", "agents", "sales"), INDEX.get("AgentIdentity", "agents", "a")
    assert isinstance(blueprint, AgentBlueprint)
    assert isinstance(identity, AgentIdentity)
    return Resolved(blueprint, identity)


RESOLVED = _resolved()
BLUEPRINT, IDENTITY = RESOLVED.blueprint, RESOLVED.identity
APP_ENV = blueprint_app_env(BLUEPRINT, 5000) + identity_app_env(IDENTITY)
STATUS_PATH = "/metadata/annotations/entra.io~1status"
DEFAULT_PATH = "/metadata/annotations/kubectl.kubernetes.io~1default-container"


def planned(pod: dict[str, Any], version: tuple[int, int] = (1, 36), **options: Any) -> Plan:
    settings, rendered = Settings(), Rendered()
    rendered.bind(INDEX, settings, version)
    result = plan(pod, RESOLVED, PodOptions(**options), settings, version, rendered)
    assert isinstance(result, Plan), result
    return result


def ops_of(result: Plan) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = orjson.loads(result.patch.document())
    assert result.patch.op_count == len(ops)
    return ops


def add(path: str, value: Any) -> dict[str, Any]:
    return {"op": "add", "path": path, "value": value}


def status(mode: Mode) -> str:
    return status_annotation(BLUEPRINT, IDENTITY, mode)


def app(name: str, env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"name": name, "image": "agent:1", **({"env": env} if env is not None else {})}


def test_a_pod_with_annotations_volumes_and_env_gets_one_op_per_item_in_order() -> None:
    pod = {
        "metadata": {"name": "web", "annotations": {"team": "sales"}},
        "spec": {
            "containers": [app("agent", [{"name": "LOG_LEVEL", "value": "info"}]), app("exporter")],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": []}}],
        },
    }
    result = planned(pod, version=(1, 28))
    assert (result.mode, result.reinvoked, result.warnings) == ("container", False, [])
    assert ops_of(result) == [
        add(STATUS_PATH, status("container")),
        add(DEFAULT_PATH, "agent"),
        *(add("/spec/volumes/-", volume) for volume in sidecar_volumes(BLUEPRINT)),
        add("/spec/containers/0", sidecar_container(BLUEPRINT, True, Settings(), 5000, "container")),
        *(add("/spec/containers/1/env/-", item) for item in APP_ENV),
        add("/spec/containers/2/env", APP_ENV),
    ]


def test_a_native_sidecar_creates_the_init_container_list_and_shifts_no_app_container() -> None:
    pod = {"metadata": {"name": "web"}, "spec": {"containers": [app("agent")]}}
    result = planned(pod)
    assert result.mode == "native"
    assert ops_of(result) == [
        add(
            "/metadata/annotations",
            {"entra.io/status": status("native"), "kubectl.kubernetes.io/default-container": "agent"},
        ),
        add("/spec/volumes", sidecar_volumes(BLUEPRINT)),
        add("/spec/initContainers", [sidecar_container(BLUEPRINT, True, Settings(), 5000, "native")]),
        add("/spec/containers/0/env", APP_ENV),
    ]


def test_a_pod_without_metadata_gets_it_with_our_annotations() -> None:
    result = planned({"spec": {"containers": [app("agent")]}})
    assert ops_of(result)[0] == add(
        "/metadata",
        {"annotations": {"entra.io/status": status("native"), "kubectl.kubernetes.io/default-container": "agent"}},
    )


def test_env_names_an_app_container_already_sets_are_left_to_it() -> None:
    own = [{"name": "SIDECAR_URL", "value": "http://localhost:9999"}]
    pod = {"metadata": {"annotations": {"entra.io/status": "{}"}}, "spec": {"containers": [app("agent", own)]}}
    ops = ops_of(planned(pod, version=(1, 28)))
    assert ops[0] == add(DEFAULT_PATH, "agent")  # the status annotation is the Pod's own: kept
    assert ops[-2:] == [add("/spec/containers/1/env/-", item) for item in APP_ENV if item["name"] != "SIDECAR_URL"]


def test_a_reinvocation_gives_env_only_to_containers_added_since() -> None:
    sidecar = sidecar_container(BLUEPRINT, True, Settings(), 5000, "container")
    pod = {"spec": {"containers": [sidecar, app("agent", APP_ENV), app("late-proxy")]}}
    result = planned(pod)
    assert (result.mode, result.reinvoked) == ("container", True)
    assert ops_of(result) == [add("/spec/containers/2/env", APP_ENV)]
    pod["spec"]["containers"][2]["env"] = APP_ENV
    assert ops_of(planned(pod)) == []


def test_a_pod_that_cannot_take_the_sidecar_gets_a_conflict_and_no_ops() -> None:
    pod = {"spec": {"containers": [{**app("agent"), "ports": [{"containerPort": 5000}]}]}}
    settings, rendered = Settings(), Rendered()
    rendered.bind(INDEX, settings, (1, 36))
    result = plan(pod, RESOLVED, PodOptions(), settings, (1, 36), rendered)
    assert isinstance(result, Conflict)
    assert result.reason == "port-conflict"


def test_the_sidecar_hides_the_api_token_path_and_the_app_keeps_its_own_token_mount() -> None:
    """Any mount at the token path makes the ServiceAccount plugin leave a container alone: ours is an
    empty read-only directory, so the sidecar holds no API token and the plugin changes nothing after us."""
    token_mount = {"name": "kube-api-access-x", "mountPath": API_TOKEN_DIR, "readOnly": True}
    pod = {
        "spec": {
            "containers": [{**app("agent"), "volumeMounts": [token_mount]}],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": []}}],
        }
    }
    ops = ops_of(planned(pod, version=(1, 28)))
    assert not any("volumeMounts" in op["path"] for op in ops)
    patched = jsonpatch.apply_patch(pod, ops)
    sidecar, agent = patched["spec"]["containers"]
    assert [m for m in sidecar["volumeMounts"] if m["mountPath"] == API_TOKEN_DIR] == [
        {"name": NO_API_TOKEN_VOLUME, "mountPath": API_TOKEN_DIR, "readOnly": True}
    ]
    assert {"name": NO_API_TOKEN_VOLUME, "emptyDir": {}} in patched["spec"]["volumes"]
    assert agent["volumeMounts"] == [token_mount]
