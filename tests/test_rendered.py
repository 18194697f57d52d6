"""The render cache: parts rendered once per configuration, never stale, never shared mutably."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from tests.conftest import resource
from webhook.common.models import AgentBlueprint, AgentIdentity, parse_object
from webhook.core.decision import Inject, decide
from webhook.core.index import ConfigIndex
from webhook.core.rendered import Rendered
from webhook.core.settings import Settings

SALES = {
    "tenantId": "7a1c2f0e-4b5d-4c3e-9f00-123456789abc",
    "clientId": "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a",
    "credential": {"workloadIdentity": {}},
}
AGENT = {"blueprint": "sales", "clientId": "f3897825-fd03-45f5-90eb-fdbf26135650"}


def config(blueprint: dict[str, Any] = SALES) -> ConfigIndex:
    return ConfigIndex.of(
        [
            parse_object(resource("AgentBlueprint", "sales", blueprint)),
            parse_object(resource("AgentIdentity", "a", AGENT)),
        ]
    )


def pod() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "annotations": {"entra.io/agent-identity": "a"}},
        "spec": {"containers": [{"name": "app", "env": [{"name": "X", "value": "1"}]}]},
    }


def sidecar(outcome: object) -> dict[str, Any]:
    assert isinstance(outcome, Inject)
    found: dict[str, Any] = next(op["value"] for op in outcome.ops if op["path"] == "/spec/containers/0")
    return found


def blueprint_of(index: ConfigIndex) -> AgentBlueprint:
    found = index.get("AgentBlueprint", "agents", "sales")
    assert isinstance(found, AgentBlueprint)
    return found


def test_a_part_is_rendered_once_and_served_again_for_the_same_configuration() -> None:
    index, settings, rendered = config(), Settings(), Rendered()
    identity = index.get("AgentIdentity", "agents", "a")
    assert isinstance(identity, AgentIdentity)
    rendered.bind(index, settings, None)
    first = rendered.parts(blueprint_of(index), identity, "container", 5000)
    rendered.bind(index, settings, None)
    assert rendered.parts(blueprint_of(index), identity, "container", 5000) is first
    without = rendered.parts(blueprint_of(index), None, "container", 5000)
    assert without.sidecar != first.sidecar  # no AllowOverrides pair
    assert without.volumes is first.volumes  # the blueprint's, shared


def test_identities_of_one_blueprint_share_its_rendered_sidecar() -> None:
    index, settings, rendered = config(), Settings(), Rendered()
    other = parse_object(resource("AgentIdentity", "b", {**AGENT, "clientId": "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"}))
    identity = index.get("AgentIdentity", "agents", "a")
    assert isinstance(identity, AgentIdentity)
    assert isinstance(other, AgentIdentity)
    rendered.bind(index, settings, None)
    one = rendered.parts(blueprint_of(index), identity, "container", 5000)
    two = rendered.parts(blueprint_of(index), other, "container", 5000)
    assert two.sidecar is one.sidecar
    assert two.env != one.env  # AGENT_IDENTITY_APP_ID differs


def test_a_new_configuration_snapshot_renders_again() -> None:
    rendered, settings = Rendered(), Settings()
    old = sidecar(decide(pod(), "agents", config(), settings, rendered=rendered))
    changed = config({**SALES, "logLevel": "Debug"})
    new = sidecar(decide(pod(), "agents", changed, settings, rendered=rendered))
    assert {"name": "Logging__LogLevel__Default", "value": "Debug"} in new["env"]
    assert {"name": "Logging__LogLevel__Default", "value": "Debug"} not in old["env"]


def test_new_settings_render_again() -> None:
    rendered, index = Rendered(), config()
    decide(pod(), "agents", index, Settings(), rendered=rendered)
    image = "example.com/sidecar:2.0.0"
    assert sidecar(decide(pod(), "agents", index, Settings(sidecar_image=image), rendered=rendered))["image"] == image


def test_a_new_server_version_renders_again() -> None:
    rendered, index, settings = Rendered(), config(), Settings()
    rendered.bind(index, settings, None)
    rendered.parts(blueprint_of(index), None, "container", 5000)
    assert len(rendered) == 3  # the parts, the sidecar, the volumes
    rendered.bind(index, settings, (1, 30))
    assert len(rendered) == 0
    outcome = decide(pod(), "agents", index, settings, (1, 30), rendered=rendered)
    assert isinstance(outcome, Inject)
    assert any(op["path"] == "/spec/initContainers" for op in outcome.ops)


def test_a_blueprint_object_that_is_not_the_one_rendered_is_rendered_anew() -> None:
    """Entries are keyed by the object: an equal-looking but different blueprint is never served stale."""
    rendered, settings = Rendered(), Settings()
    index = config()
    rendered.bind(index, settings, None)
    old = rendered.parts(blueprint_of(index), None, "container", 5000)
    other = blueprint_of(config({**SALES, "credential": {"clientSecret": {"secretName": "s", "key": "k"}}}))
    new = rendered.parts(other, None, "container", 5000)
    assert new.volumes.append.op_count == 3
    assert old.volumes.append.op_count == 4  # with the projected token volume


def test_the_cache_holds_at_most_its_limit_per_table() -> None:
    rendered, index, settings = Rendered(limit=2), config(), Settings()
    rendered.bind(index, settings, None)
    for port in range(5000, 5010):
        rendered.parts(blueprint_of(index), None, "container", port)
    assert len(rendered) == 2 + 2 + 1  # parts, sidecars (one per port), volumes (one blueprint)
    newest = rendered.parts(blueprint_of(index), None, "container", 5009).sidecar.insert.encoded
    assert orjson.loads(newest)["value"]["env"][0]["value"] == "http://+:5009"


def test_changing_one_outcome_s_ops_changes_nothing_another_request_sees() -> None:
    rendered, index, settings = Rendered(), config(), Settings()
    first = decide(pod(), "agents", index, settings, rendered=rendered)
    assert isinstance(first, Inject)
    expected = first.ops
    mutated = first.ops
    for op in mutated:
        op["value"] = "changed"
    sidecar(first)["env"].clear()
    second = decide(pod(), "agents", index, settings, rendered=rendered)
    assert isinstance(second, Inject)
    assert second.ops == expected
    assert first.ops == expected  # each read of ops is a fresh copy
    assert second.patch == first.patch


def test_a_cached_outcome_equals_an_uncached_one() -> None:
    rendered, index, settings = Rendered(), config(), Settings()
    for _ in range(3):
        cached = decide(copy.deepcopy(pod()), "agents", index, settings, rendered=rendered)
        fresh = decide(copy.deepcopy(pod()), "agents", index, settings)
        assert cached == fresh


def test_a_pod_with_empty_metadata_gets_its_annotations_set_whole_and_one_without_gets_metadata() -> None:
    documents = [
        resource("AgentBlueprint", "sales", SALES),
        resource("AgentIdentity", "a", {**AGENT, "serviceAccounts": ["web"]}),
    ]
    index = ConfigIndex.of(parse_object(document) for document in documents)
    spec = {"serviceAccountName": "web", "containers": [{"name": "app"}]}
    for subject, path in (({"metadata": {}, "spec": spec}, "/metadata/annotations"), ({"spec": spec}, "/metadata")):
        outcome = decide(subject, "agents", index, Settings(), rendered=Rendered())
        assert isinstance(outcome, Inject)
        first = outcome.ops[0]
        assert first["path"] == path
        annotations = first["value"] if path.endswith("annotations") else first["value"]["annotations"]
        assert set(annotations) == {"entra.io/status", "kubectl.kubernetes.io/default-container"}
