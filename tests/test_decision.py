"""Every skip and denial the core can return, with the exact message a user reads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import resource
from webhook.common.models import ObjectRef, parse_object
from webhook.core.decision import Deny, Inject, Skip, decide
from webhook.core.index import ConfigIndex
from webhook.core.settings import Settings

GUID = "7a1c2f0e-4b5d-4c3e-9f00-123456789abc"


def pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web-7d9c"}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": {"containers": [{"name": "app", "image": "agent:1"}], **spec}}


def denied(config: ConfigIndex, subject: dict[str, Any], namespace: str = "agents") -> Deny:
    outcome = decide(subject, namespace, config, Settings())
    assert isinstance(outcome, Deny), outcome
    return outcome


def skipped(config: ConfigIndex, subject: dict[str, Any], namespace: str = "agents", **settings: Any) -> Skip:
    outcome = decide(subject, namespace, config, Settings(**settings))
    assert isinstance(outcome, Skip), outcome
    return outcome


def test_unknown_identity_is_denied_with_the_names_the_namespace_has(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/agent-identity": "sales-agnt"}))
    assert outcome.reason == "unknown-identity"
    assert outcome.code == 403
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": entra.io/agent-identity names "sales-agnt", but namespace '
        '"agents" has no AgentIdentity of that name (have: broken-identity, managed-agent, orphan, pending-agent, '
        "sales-agent, support-agent, twin-a, twin-b, unreported-agent)"
    )
    assert outcome.missing == ObjectRef("AgentIdentity", "agents", "sales-agnt")


def test_unknown_identity_in_an_empty_namespace_says_it_has_none(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/agent-identity": "sales-agent"}), namespace="elsewhere")
    assert outcome.message == (
        'pod "web-7d9c" in namespace "elsewhere": entra.io/agent-identity names "sales-agent", but namespace '
        '"elsewhere" has no AgentIdentity of that name (have: none)'
    )


def test_unknown_blueprint_annotation_is_denied(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/blueprint": "sale"}))
    assert outcome.reason == "unknown-blueprint"
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": entra.io/blueprint names "sale", but namespace "agents" has no '
        "AgentBlueprint of that name (have: broken, legacy, sales, support)"
    )
    assert outcome.missing == ObjectRef("AgentBlueprint", "agents", "sale")


def test_identity_whose_blueprint_is_missing_is_denied_naming_the_identity(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/agent-identity": "orphan"}))
    assert outcome.reason == "unknown-blueprint"
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": AgentIdentity "orphan" names blueprint "gone", but namespace '
        '"agents" has no AgentBlueprint of that name (have: broken, legacy, sales, support)'
    )


def test_identity_and_blueprint_annotations_that_disagree_are_denied(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/agent-identity": "sales-agent", "entra.io/blueprint": "support"}))
    assert outcome.reason == "blueprint-mismatch"
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": entra.io/blueprint names "support", but AgentIdentity '
        '"sales-agent" belongs to blueprint "sales": make them agree or drop the entra.io/blueprint annotation'
    )


def test_identity_and_blueprint_annotations_that_agree_inject(config: ConfigIndex) -> None:
    outcome = decide(
        pod({"entra.io/agent-identity": "sales-agent", "entra.io/blueprint": "sales"}), "agents", config, Settings()
    )
    assert isinstance(outcome, Inject)
    assert (outcome.blueprint, outcome.identity) == ("sales", "sales-agent")


def test_invalid_blueprint_is_denied_with_its_validation_error(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/blueprint": "broken"}))
    assert outcome.reason == "invalid-config"
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": entra.io/blueprint names "broken", but AgentBlueprint "broken" '
        'in namespace "agents" is invalid: spec.tenantId: must be a GUID like 7a1c2f0e-4b5d-4c3e-9f00-123456789abc, '
        "got 'not-a-guid': fix the AgentBlueprint"
    )


def test_invalid_identity_is_denied_with_its_validation_error(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/agent-identity": "broken-identity"}))
    assert outcome.reason == "invalid-config"
    assert "spec.clientId: must be a GUID" in outcome.message
    assert outcome.message.endswith("got '12345': fix the AgentIdentity")


def test_blueprint_with_neither_ids_nor_env_from_is_denied() -> None:
    blueprint = parse_object(resource("AgentBlueprint", "empty", {"logLevel": "Debug"}))
    outcome = denied(ConfigIndex.of([blueprint]), pod({"entra.io/blueprint": "empty"}))
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": entra.io/blueprint names "empty", but AgentBlueprint "empty" in '
        'namespace "agents" is invalid: spec: set spec.tenantId, spec.clientId and spec.credential, or spec.envFrom '
        "naming a ConfigMap or Secret that holds the AzureAd__* settings (missing: tenantId, clientId, credential): "
        "fix the AgentBlueprint"
    )


def test_service_account_listed_by_two_identities_is_denied(config: ConfigIndex) -> None:
    outcome = denied(config, pod(serviceAccountName="shared"))
    assert outcome.reason == "ambiguous-identity"
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": service account "shared" is listed in spec.serviceAccounts of '
        "several AgentIdentities (twin-a, twin-b): name one with the entra.io/agent-identity annotation, or "
        "list the service account in only one of them"
    )


def test_annotation_wins_over_an_ambiguous_service_account(config: ConfigIndex) -> None:
    outcome = decide(
        pod({"entra.io/agent-identity": "twin-a"}, serviceAccountName="shared"), "agents", config, Settings()
    )
    assert isinstance(outcome, Inject)
    assert outcome.identity == "twin-a"


def test_port_already_used_by_the_pod_is_denied(config: ConfigIndex) -> None:
    subject = pod({"entra.io/agent-identity": "sales-agent"})
    subject["spec"]["containers"][0]["ports"] = [{"containerPort": 5000}]
    outcome = denied(config, subject)
    assert (outcome.reason, outcome.code) == ("port-conflict", 400)
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": container "app" already uses port 5000, which entra-sidecar '
        "needs: set the entra.io/sidecar-port annotation to a free port"
    )


def test_annotated_port_already_used_is_denied(config: ConfigIndex) -> None:
    subject = pod({"entra.io/agent-identity": "sales-agent", "entra.io/sidecar-port": "8080"})
    subject["spec"]["initContainers"] = [{"name": "init", "image": "x", "ports": [{"containerPort": 8080}]}]
    outcome = denied(config, subject)
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": container "init" already uses port 8080, which entra-sidecar '
        "needs: choose a free port in that annotation"
    )


def test_reserved_volume_name_is_denied(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/agent-identity": "sales-agent"}, volumes=[{"name": "entra-sidecar-tmp"}]))
    assert outcome.reason == "volume-conflict"
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": volume "entra-sidecar-tmp" already exists, but entra-sidecar is '
        "not there: the names entra-identity-token, entra-sidecar-tmp, entra-sidecar-keys, "
        "entra-sidecar-no-api-token are reserved for the injector; rename the volume"
    )


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        (
            {"entra.io/agent-identity": "Sales Agent"},
            "annotation entra.io/agent-identity='Sales Agent' is not a valid AgentIdentity name: use the "
            "metadata.name of one in the pod's namespace (lowercase letters, digits, '-' and '.')",
        ),
        (
            {"entra.io/blueprint": ""},
            "annotation entra.io/blueprint='' is not a valid AgentBlueprint name: use the metadata.name of one "
            "in the pod's namespace (lowercase letters, digits, '-' and '.')",
        ),
        (
            {"entra.io/agent-identity": "sales-agent", "entra.io/sidecar-mode": "sidecar"},
            "annotation entra.io/sidecar-mode='sidecar' must be 'native' or 'container'",
        ),
        (
            {"entra.io/agent-identity": "sales-agent", "entra.io/sidecar-port": "80"},
            "annotation entra.io/sidecar-port='80' must be a port number from 1024 to 65535 (the sidecar runs as "
            "non-root and cannot bind lower ports)",
        ),
        (
            {"entra.io/agent-identity": "sales-agent", "entra.io/sidecar-port": "http"},
            "annotation entra.io/sidecar-port='http' must be a port number from 1024 to 65535 (the sidecar runs "
            "as non-root and cannot bind lower ports)",
        ),
        (
            {"entra.io/agent-identity": "sales-agent", "entra.io/inject-containers": "app,,Worker"},
            "annotation entra.io/inject-containers='app,,Worker' must be a comma-separated list of container "
            "names (bad: '', 'Worker')",
        ),
        (
            {"entra.io/agent-identity": "sales-agent", "entra.io/inject-containers": "ap"},
            "annotation entra.io/inject-containers names 'ap', but the pod has no such app container (have: app)",
        ),
    ],
)
def test_bad_annotation_values_are_denied_with_the_fix(
    config: ConfigIndex, annotations: dict[str, str], message: str
) -> None:
    outcome = denied(config, pod(annotations))
    assert (outcome.reason, outcome.code) == ("bad-annotation", 400)
    assert outcome.message == f'pod "web-7d9c" in namespace "agents": {message}'


def test_init_container_named_for_env_in_container_mode_is_denied(config: ConfigIndex) -> None:
    subject = pod(
        {"entra.io/agent-identity": "sales-agent", "entra.io/inject-containers": "setup,app"},
        initContainers=[{"name": "setup", "image": "x"}],
    )
    outcome = denied(config, subject)
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": annotation entra.io/inject-containers names init container(s) '
        "'setup', which run before a regular-container sidecar starts: use the native sidecar mode or drop them"
    )


def test_pod_naming_nothing_is_admitted_unchanged_with_a_warning(config: ConfigIndex) -> None:
    outcome = skipped(config, pod())
    assert outcome.reason == "no-identity"
    assert outcome.warnings == [
        'pod "web-7d9c" in namespace "agents": names no agent identity, so no sidecar was injected: add the '
        'entra.io/agent-identity annotation, or list service account "default" in an AgentIdentity\'s '
        "spec.serviceAccounts"
    ]


@pytest.mark.parametrize("namespace", ["kube-system", "kube-node-lease", "kube-public", "entra-system"])
def test_system_and_own_namespaces_are_never_touched(config: ConfigIndex, namespace: str) -> None:
    outcome = skipped(config, pod({"entra.io/agent-identity": "sales-agent"}), namespace=namespace)
    assert outcome.reason == "system-namespace"
    assert outcome.message == f'pod "web-7d9c" in namespace "{namespace}": namespace "{namespace}" is never injected'
    assert outcome.warnings == [outcome.message]  # every skip in an opted-in namespace says why


def test_own_namespace_follows_the_setting(config: ConfigIndex) -> None:
    outcome = skipped(config, pod({"entra.io/agent-identity": "sales-agent"}), own_namespace="agents")
    assert outcome.reason == "system-namespace"


def test_mirror_pods_are_never_touched(config: ConfigIndex) -> None:
    outcome = skipped(config, pod({"entra.io/agent-identity": "sales-agent", "kubernetes.io/config.mirror": "abc"}))
    assert outcome.reason == "mirror-pod"
    assert outcome.message == 'pod "web-7d9c" in namespace "agents": static (mirror) pods are never injected'
    assert outcome.warnings == [outcome.message]


def test_opted_out_pods_are_left_alone_even_when_called(config: ConfigIndex) -> None:
    subject = pod({"entra.io/agent-identity": "sales-agent"})
    subject["metadata"]["labels"] = {"entra.io/inject": "disabled"}
    outcome = skipped(config, subject)
    assert outcome.reason == "opted-out"
    assert outcome.message == 'pod "web-7d9c" in namespace "agents": label entra.io/inject=disabled opts it out'


def test_pod_without_containers_is_left_to_api_server_validation(config: ConfigIndex) -> None:
    outcome = skipped(config, {"metadata": {"name": "empty"}, "spec": {}})
    assert outcome.reason == "invalid-pod"
    assert outcome.message == (
        'pod "empty" in namespace "agents": has no spec.containers; left to the API server\'s validation'
    )


def test_job_pod_in_container_mode_is_warned_that_it_never_completes(config: ConfigIndex) -> None:
    outcome = decide(
        pod({"entra.io/agent-identity": "sales-agent"}, restartPolicy="Never"), "agents", config, Settings()
    )
    assert isinstance(outcome, Inject)
    assert outcome.warnings == [
        'pod "web-7d9c" in namespace "agents": the sidecar runs as a regular container, so it keeps running after '
        "the app exits and a Job never completes; use native sidecars (Kubernetes 1.29+)"
    ]


def test_host_network_pod_is_warned_that_the_node_can_reach_the_sidecar(config: ConfigIndex) -> None:
    outcome = decide(pod({"entra.io/agent-identity": "sales-agent"}, hostNetwork=True), "agents", config, Settings())
    assert isinstance(outcome, Inject)
    assert outcome.warnings == [
        'pod "web-7d9c" in namespace "agents": hostNetwork: the sidecar listens on the node\'s network on port '
        "5000, so other processes on the node can ask it for tokens; run the agent without hostNetwork"
    ]


def test_generate_name_pods_are_named_by_their_prefix(config: ConfigIndex) -> None:
    subject = {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "app"}]}}
    outcome = skipped(config, subject)
    assert outcome.message.startswith('pod "web-*" in namespace "agents": names no agent identity')


def test_auto_mode_picks_native_sidecars_from_kubernetes_1_29(config: ConfigIndex) -> None:
    subject = pod({"entra.io/agent-identity": "sales-agent"})
    new = decide(subject, "agents", config, Settings(), server_version=(1, 29))
    old = decide(subject, "agents", config, Settings(), server_version=(1, 28))
    unknown = decide(subject, "agents", config, Settings())
    assert isinstance(new, Inject)
    assert isinstance(old, Inject)
    assert isinstance(unknown, Inject)
    assert [op["path"] for op in new.ops if op["value"] is not None and "entra-sidecar" in str(op["value"])[:40]]
    assert any(op["path"] == "/spec/initContainers" for op in new.ops)
    assert any(op["path"] == "/spec/containers/0" for op in old.ops)
    assert any(op["path"] == "/spec/containers/0" for op in unknown.ops)


def test_pod_annotation_overrides_the_operator_mode(config: ConfigIndex) -> None:
    subject = pod({"entra.io/agent-identity": "sales-agent", "entra.io/sidecar-mode": "container"})
    outcome = decide(subject, "agents", config, Settings(mode="native"), server_version=(1, 30))
    assert isinstance(outcome, Inject)
    assert any(op["path"] == "/spec/containers/0" for op in outcome.ops)
    assert not any(op["path"].startswith("/spec/initContainers") for op in outcome.ops)


@pytest.mark.parametrize(
    ("garbage", "outcome", "reason"),
    [
        ({}, Skip, "invalid-pod"),
        ({"metadata": None, "spec": None}, Skip, "invalid-pod"),
        ({"metadata": {"annotations": None}, "spec": {"containers": [None, 3, "x"]}}, Deny, "malformed-pod"),
        (
            {"metadata": {"annotations": {"entra.io/agent-identity": 7}}, "spec": {"containers": [{}]}},
            Deny,
            "malformed-pod",
        ),
        (
            {"metadata": {"annotations": {"entra.io/agent-identity": "sales-agent"}}, "spec": {"containers": [{}]}},
            Inject,
            "injected",
        ),
        (
            {
                "metadata": {"annotations": {"entra.io/agent-identity": "sales-agent"}},
                "spec": {"containers": [{"name": "a", "env": None, "ports": [None]}], "volumes": 5},
            },
            Deny,
            "malformed-pod",
        ),
    ],
)
def test_malformed_pods_are_denied_or_left_to_the_api_server(
    config: ConfigIndex, garbage: dict[str, Any], outcome: type, reason: str
) -> None:
    decided = decide(garbage, "agents", config, Settings())
    assert isinstance(decided, outcome)
    assert decided.reason == reason


def test_a_managed_identity_that_is_not_ready_is_denied_with_the_condition(config: ConfigIndex) -> None:
    outcome = denied(config, pod({"entra.io/agent-identity": "pending-agent"}))
    assert outcome.reason == "identity-not-ready"
    assert outcome.message == (
        'pod "web-7d9c" in namespace "agents": AgentIdentity "pending-agent" is managed by the controller and not '
        'ready yet (Ready=False, AgentIdentity_LimitExceeded: blueprint "sales" has 250 agent identities, its '
        "limit; delete unused ones or purge soft-deleted ones); Pods naming it are admitted once it is: "
        "kubectl describe agentidentity pending-agent -n agents"
    )


def test_a_not_ready_denial_keeps_the_fix_of_a_long_condition_and_its_own(config: ConfigIndex) -> None:
    said = (
        "Graph refused the create: " + "a long explanation " * 40 + "grant the blueprint AgentIdentity.CreateAsManager"
    )
    document = resource(
        "AgentIdentity", "long-agent", {"blueprint": "sales", "sponsors": [{"kind": "User", "id": GUID}]}
    )
    document["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": "Forbidden", "message": said}]}
    outcome = denied(config.with_object(parse_object(document)), pod({"entra.io/agent-identity": "long-agent"}))
    assert outcome.message.startswith(
        'pod "web-7d9c" in namespace "agents": AgentIdentity "long-agent" is managed by the controller and not ready '
        "yet (Ready=False, Forbidden: Graph refused the create: a long explanation"
    )
    assert outcome.message.endswith(
        "grant the blueprint AgentIdentity.CreateAsManager); Pods naming it are admitted once it is: "
        "kubectl describe agentidentity long-agent -n agents"
    )


def test_a_managed_identity_without_a_status_is_denied_saying_the_controller_has_not_reported(
    config: ConfigIndex,
) -> None:
    outcome = denied(config, pod({"entra.io/agent-identity": "unreported-agent"}))
    assert outcome.reason == "identity-not-ready"
    assert "the controller has not reported on it yet (is `entra-webhook controller` running?)" in outcome.message


def test_a_ready_managed_identity_gives_the_app_its_recorded_id(config: ConfigIndex) -> None:
    outcome = decide(pod({"entra.io/agent-identity": "managed-agent"}), "agents", config, Settings())
    assert isinstance(outcome, Inject)
    app_env = next(op["value"] for op in outcome.ops if op["path"] == "/spec/containers/1/env")
    assert {"name": "AGENT_IDENTITY_APP_ID", "value": "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b"} in app_env
