"""What each server refuses at apply time, and with which words.

From 1.25 the CRDs' CEL rules refuse what OpenAPI cannot say, with a message that names the fix. 1.20 has
no CEL: its kubectl must be told not to validate a CRD against its own older schema (--validate=false, as
the install docs say), the server drops the rules and accepts those resources, and the webhook denies Pods
naming them with the same fix. What OpenAPI says (GUIDs, enums, required fields), every version refuses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import resource
from tests.e2e.conftest import CEL_SINCE, CRDS
from tests.e2e.controlplane import ControlPlane
from tests.test_crds import REFUSED
from webhook.common.models import InvalidObject, parse_object


def dry_run(plane: ControlPlane, document: dict[str, Any]) -> tuple[bool, str]:
    """What the server says (kubectl's own client-side checks off, so that every version is asked the same)."""
    command = ["create", "--dry-run=server", "--validate=false", "-f", "-"]
    result = plane.kubectl(*command, input=json.dumps(document), check=False)
    return result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("kind", "spec", "message"), REFUSED, ids=[m[:40] for _, _, m in REFUSED])
def test_a_resource_a_cel_rule_refuses_is_refused_with_the_fix_from_1_25_and_denied_for_pods_before(
    control_plane: ControlPlane, kind: str, spec: dict[str, Any], message: str
) -> None:
    document = resource(kind, "refused", spec, namespace="default")
    accepted, said = dry_run(control_plane, document)
    if control_plane.version >= CEL_SINCE:
        assert not accepted
        assert f'The {kind} "refused" is invalid: ' in said
        assert message in " ".join(said.split())
        assert "must validate" not in said  # no schema combinator speaks before the rule
    else:
        assert accepted, said  # no CEL here: the webhook says it instead, when a Pod names it
        parsed = parse_object(document)
        assert isinstance(parsed, InvalidObject)
        assert message in parsed.message


@pytest.mark.parametrize(
    ("kind", "spec", "said"),
    [
        ("AgentIdentity", {"blueprint": "sales", "clientId": "not-a-guid"}, "spec.clientId: Invalid value"),
        ("AgentIdentity", {"clientId": "7a1c2f0e-4b5d-4c3e-9f00-123456789abc"}, "spec.blueprint: Required value"),
        ("AgentBlueprint", {"envFrom": [{"secretRef": {"name": "s"}}], "logLevel": "Verbose"}, "spec.logLevel"),
    ],
)
def test_what_openapi_says_every_version_refuses(
    control_plane: ControlPlane, kind: str, spec: dict[str, Any], said: str
) -> None:
    accepted, message = dry_run(control_plane, resource(kind, "refused", spec, namespace="default"))
    assert not accepted
    assert said in message


def test_the_stored_crds_hold_the_rules_only_where_the_server_has_cel(control_plane: ControlPlane) -> None:
    stored = json.loads(control_plane.kubectl("get", "crd", "agentidentities.entra.io", "-o", "json").stdout)
    spec = stored["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert ("x-kubernetes-validations" in spec) == (control_plane.version >= CEL_SINCE)


def test_before_1_25_kubectl_refuses_the_crds_unless_told_not_to_validate_them(control_plane: ControlPlane) -> None:
    """Why the install docs add --validate=false there: that kubectl checks a CRD against its own schema of a
    CRD, which predates x-kubernetes-validations; the server itself accepts the CRD."""
    checked = control_plane.kubectl("apply", "--dry-run=server", "-k", str(CRDS), check=False)
    if control_plane.version >= CEL_SINCE:
        assert checked.returncode == 0, checked.stderr
    else:
        assert checked.returncode != 0
        assert 'unknown field "x-kubernetes-validations"' in checked.stderr
        assert "--validate=false" in checked.stderr
    unchecked = control_plane.kubectl("apply", "--dry-run=server", "--validate=false", "-k", str(CRDS))
    assert unchecked.stdout.count("customresourcedefinition.apiextensions.k8s.io/") == 2
    assert unchecked.stdout.count("(server dry run)") == 3  # and the controller's ClusterRole
