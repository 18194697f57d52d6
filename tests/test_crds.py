"""The CRDs' CEL rules and the webhook's own validation say the same fix in the same words.

The API server (1.25+) refuses such a resource at apply time with the rule's message; an older one accepts
it, and the webhook denies Pods naming it with the model's message. tests/e2e/test_crds.py shows each server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import resource
from webhook.common import models
from webhook.common.models import InvalidObject, parse_object

CRDS = Path(__file__).resolve().parents[1] / "charts" / "entra-webhook" / "crds"
GUID = "7a1c2f0e-4b5d-4c3e-9f00-123456789abc"
COMPLETE = {"tenantId": GUID, "clientId": GUID, "credential": {"workloadIdentity": {}}}

# (kind, spec, the CEL rule's message, the CRD's path to the rule)
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("AgentIdentity", {"blueprint": "sales"}, models.UNNAMED_IDENTITY),
    (
        "AgentIdentity",
        {"blueprint": "sales", "sponsors": [{"kind": "Group", "id": GUID}] * 6},
        models.GROUP_SPONSORS,
    ),
    ("AgentBlueprint", {"tenantId": GUID}, models.INCOMPLETE_BLUEPRINT),
    ("AgentBlueprint", {"envFrom": []}, models.INCOMPLETE_BLUEPRINT),
    (
        "AgentBlueprint",
        {**COMPLETE, "credential": {"workloadIdentity": {}, "clientSecret": {"secretName": "s", "key": "k"}}},
        models.ONE_CREDENTIAL,
    ),
    ("AgentBlueprint", {**COMPLETE, "credential": {}}, models.ONE_CREDENTIAL),
    ("AgentBlueprint", {"envFrom": [{"prefix": "X_"}]}, models.ONE_ENV_FROM_SOURCE),
    ("AgentBlueprint", {**COMPLETE, "downstreamApis": {"my api": {"baseUrl": "https://x.example"}}}, models.API_NAME),
    ("AgentBlueprint", {**COMPLETE, "downstreamApis": {"a__b": {"baseUrl": "https://x.example"}}}, models.API_NAME),
]


def rules(kind: str) -> list[dict[str, str]]:
    """Every x-kubernetes-validations rule in a CRD's schema."""
    crd = yaml.safe_load((CRDS / f"{models.PLURALS[kind]}.yaml").read_text())
    found: list[dict[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            found.extend(node.get("x-kubernetes-validations", []))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(crd["spec"]["versions"][0]["schema"])
    return found


def test_every_cel_rule_has_a_message_the_webhook_says_too() -> None:
    said = {message for _, _, message in REFUSED}
    for kind in models.KINDS:
        for rule in rules(kind):
            assert " ".join(rule["message"].split()) in said, rule


def test_no_schema_combinator_is_left_to_say_must_validate_one_schema() -> None:
    for kind in models.KINDS:
        text = (CRDS / f"{models.PLURALS[kind]}.yaml").read_text()
        assert "anyOf" not in text
        assert "oneOf" not in text


@pytest.mark.parametrize(("kind", "spec", "message"), REFUSED)
def test_what_a_rule_refuses_the_webhook_refuses_with_the_same_fix(
    kind: str, spec: dict[str, Any], message: str
) -> None:
    parsed = parse_object(resource(kind, "x", spec))
    assert isinstance(parsed, InvalidObject)
    assert message in parsed.message
