"""Validation of the two resources: every error names the object, the field, and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import resource
from webhook.common.models import (
    MESSAGE_LIMIT,
    AgentBlueprint,
    AgentIdentity,
    Condition,
    InvalidObject,
    NotConfig,
    parse_object,
)

GUID = "7a1c2f0e-4b5d-4c3e-9f00-123456789abc"


def blueprint(spec: Any) -> dict[str, Any]:
    return resource("AgentBlueprint", "sales", spec)


def identity(spec: Any) -> dict[str, Any]:
    return resource("AgentIdentity", "sales-agent", spec)


def invalid(document: dict[str, Any]) -> str:
    parsed = parse_object(document)
    assert isinstance(parsed, InvalidObject), parsed
    return parsed.message


WI = {"tenantId": GUID, "clientId": GUID, "credential": {"workloadIdentity": {}}}


def test_a_complete_blueprint_parses_with_defaults() -> None:
    parsed = parse_object(blueprint(WI))
    assert isinstance(parsed, AgentBlueprint)
    assert parsed.spec.credential is not None
    assert parsed.spec.credential.workload_identity is not None
    assert parsed.spec.credential.workload_identity.audience == "api://AzureADTokenExchange"
    assert parsed.spec.credential.workload_identity.expiration_seconds == 3600


def test_guids_are_normalised_to_lowercase() -> None:
    parsed = parse_object(blueprint({**WI, "clientId": GUID.upper()}))
    assert isinstance(parsed, AgentBlueprint)
    assert parsed.spec.client_id == GUID


def test_bad_guid_names_object_field_and_format() -> None:
    assert invalid(blueprint({**WI, "tenantId": "contoso"})) == (
        'AgentBlueprint "sales" in namespace "agents" is invalid: spec.tenantId: must be a GUID like '
        "7a1c2f0e-4b5d-4c3e-9f00-123456789abc, got 'contoso'"
    )


@pytest.mark.parametrize("seconds", [60, 3599, 86401])
def test_expiration_outside_one_to_24_hours_is_rejected(seconds: int) -> None:
    message = invalid(blueprint({**WI, "credential": {"workloadIdentity": {"expirationSeconds": seconds}}}))
    assert message.endswith(
        "spec.credential.workloadIdentity.expirationSeconds: must be between 3600 and 86400 seconds "
        f"(1 to 24 hours), got {seconds}"
    )


def test_both_credentials_at_once_are_rejected() -> None:
    credential = {"workloadIdentity": {}, "clientSecret": {"secretName": "s", "key": "k"}}
    assert invalid(blueprint({**WI, "credential": credential})).endswith(
        "spec.credential: set exactly one of spec.credential.workloadIdentity (a projected service-account token; "
        "an empty object takes the defaults) or spec.credential.clientSecret (a Secret's name and key)"
    )


def test_no_credential_kind_is_rejected() -> None:
    assert invalid(blueprint({**WI, "credential": {}})).endswith(
        "spec.credential: set exactly one of spec.credential.workloadIdentity (a projected service-account token; "
        "an empty object takes the defaults) or spec.credential.clientSecret (a Secret's name and key)"
    )


def test_unknown_fields_are_errors_listing_the_allowed_ones() -> None:
    assert invalid(blueprint({**WI, "clientID": GUID})).endswith(
        "spec.clientID: is not a known field (allowed: tenantId, clientId, instance, credential, downstreamApis, "
        "envFrom, logLevel)"
    )


def test_unknown_nested_field_lists_that_level_s_fields() -> None:
    spec = {**WI, "credential": {"workloadIdentity": {"audiences": ["x"]}}}
    assert invalid(blueprint(spec)).endswith(
        "spec.credential.workloadIdentity.audiences: is not a known field (allowed: audience, expirationSeconds)"
    )


def test_space_separated_scopes_are_rejected_because_the_sidecar_ignores_them() -> None:
    spec = {**WI, "downstreamApis": {"graph": {"baseUrl": "https://graph.microsoft.com/", "scopes": "a b"}}}
    assert invalid(blueprint(spec)).endswith("spec.downstreamApis.graph.scopes: must be a list, got 'a b'")


def test_api_names_with_double_underscore_are_rejected() -> None:
    spec = {**WI, "downstreamApis": {"my__api": {"baseUrl": "https://example.com/"}}}
    assert invalid(blueprint(spec)).endswith(
        "spec.downstreamApis.my__api (the name): a downstream API name starts with a letter and holds only letters, "
        "digits, '-' and single '_' (it becomes part of the sidecar's env var names and URL paths), got 'my__api'"
    )


def test_non_https_instance_is_rejected() -> None:
    assert invalid(blueprint({**WI, "instance": "http://login.example.com/"})).endswith(
        "spec.instance: must be an absolute https URL, got 'http://login.example.com/'"
    )


def test_unknown_log_level_lists_the_levels() -> None:
    assert invalid(blueprint({**WI, "logLevel": "Info"})).endswith(
        "spec.logLevel: Input should be 'Trace', 'Debug', 'Information', 'Warning', 'Error', 'Critical' or 'None', "
        "got 'Info'"
    )


def test_client_secret_needs_a_valid_secret_name_and_key() -> None:
    spec = {**WI, "credential": {"clientSecret": {"secretName": "Bad_Name"}}}
    assert invalid(blueprint(spec)).endswith(
        "spec.credential.clientSecret.secretName: must be a Kubernetes object name (lowercase letters, digits, "
        "'-' and '.'), got 'Bad_Name'; spec.credential.clientSecret.key: is required"
    )


def test_env_from_only_blueprint_is_valid() -> None:
    parsed = parse_object(blueprint({"envFrom": [{"configMapRef": {"name": "sidecar-config"}}]}))
    assert isinstance(parsed, AgentBlueprint)


def test_env_from_entry_needs_exactly_one_reference() -> None:
    assert invalid(blueprint({"envFrom": [{"prefix": "X_"}]})).endswith(
        "spec.envFrom[0]: set exactly one of configMapRef or secretRef in each spec.envFrom entry"
    )


def test_blueprint_without_ids_or_env_from_says_what_is_missing() -> None:
    assert invalid(blueprint({"clientId": GUID})).endswith(
        "spec: set spec.tenantId, spec.clientId and spec.credential, or spec.envFrom naming a ConfigMap or Secret "
        "that holds the AzureAd__* settings (missing: tenantId, credential)"
    )


def test_missing_spec_is_reported() -> None:
    assert invalid(blueprint(None)).endswith("is invalid: spec: must be a mapping, got None")


def test_identity_parses_and_lists_service_accounts() -> None:
    parsed = parse_object(identity({"blueprint": "sales", "clientId": GUID, "serviceAccounts": ["a", "b"]}))
    assert isinstance(parsed, AgentIdentity)
    assert parsed.spec.service_accounts == ("a", "b")


def test_identity_needs_a_blueprint() -> None:
    assert invalid(identity({"clientId": GUID})) == (
        'AgentIdentity "sales-agent" in namespace "agents" is invalid: spec.blueprint: is required'
    )


def test_identity_needs_a_client_id_or_sponsors_and_says_so() -> None:
    assert invalid(identity({"blueprint": "sales"})) == (
        'AgentIdentity "sales-agent" in namespace "agents" is invalid: spec: set spec.clientId (an existing agent '
        "identity) or spec.sponsors (to have one created)"
    )


def test_an_identity_with_sponsors_is_managed_with_defaults() -> None:
    parsed = parse_object(identity({"blueprint": "sales", "sponsors": [{"kind": "User", "id": GUID.upper()}]}))
    assert isinstance(parsed, AgentIdentity)
    assert parsed.spec.managed
    assert parsed.spec.sponsors[0].id == GUID
    assert (parsed.spec.deletion_policy, parsed.spec.display_name, parsed.client_id) == ("Delete", None, None)
    assert not parsed.ready


def test_an_identity_with_a_client_id_and_no_sponsors_is_unmanaged_and_ready() -> None:
    parsed = parse_object(identity({"blueprint": "sales", "clientId": GUID}))
    assert isinstance(parsed, AgentIdentity)
    assert (parsed.spec.managed, parsed.ready, parsed.client_id) == (False, True, GUID)


def test_sponsors_are_held_to_entra_s_limits() -> None:
    groups = [{"kind": "Group", "id": GUID}] * 6
    assert invalid(identity({"blueprint": "sales", "sponsors": groups})).endswith(
        "spec: sponsors: at most 5 sponsors may be groups (Entra's limit); list users instead (got 6)"
    )
    users = [{"kind": "User", "id": GUID}] * 101
    assert invalid(identity({"blueprint": "sales", "sponsors": users})).endswith(
        "spec: sponsors: at most 100 (Entra's limit), got 101"
    )


def test_a_sponsor_kind_is_user_or_group() -> None:
    message = invalid(identity({"blueprint": "sales", "sponsors": [{"kind": "Device", "id": GUID}]}))
    assert "spec.sponsors[0].kind: Input should be 'User' or 'Group', got 'Device'" in message


def test_a_display_name_is_bounded() -> None:
    message = invalid(identity({"blueprint": "sales", "clientId": GUID, "displayName": "x" * 257}))
    assert "spec.displayName: must hold 1 to 256 characters" in message


def test_the_status_the_controller_wrote_gives_the_id_and_readiness() -> None:
    document = identity({"blueprint": "sales", "sponsors": [{"kind": "User", "id": GUID}]})
    document["status"] = {
        "clientId": GUID.upper(),
        "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned", "message": "created in Entra"}],
    }
    parsed = parse_object(document)
    assert isinstance(parsed, AgentIdentity)
    assert (parsed.client_id, parsed.ready) == (GUID, True)
    assert parsed.status.ready == Condition("True", "Provisioned", "created in Entra")


def test_a_long_condition_message_loses_its_middle_never_the_fix_at_its_end() -> None:
    document = identity({"blueprint": "sales", "sponsors": [{"kind": "User", "id": GUID}]})
    said = "Graph answered " + "details of the failure " * 100 + "then gave up: grant the blueprint AgentIdentity.X"
    document["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": "Failed", "message": said}]}
    parsed = parse_object(document)
    assert isinstance(parsed, AgentIdentity)
    assert parsed.status.ready is not None
    message = parsed.status.ready.message
    assert len(message) <= MESSAGE_LIMIT
    assert message.startswith("Graph answered details of the failure")
    assert message.endswith("then gave up: grant the blueprint AgentIdentity.X")
    assert " … " in message
    head, tail = message.split(" … ")
    assert set(head.split()) <= set(said.split())  # cut between words, not inside one
    assert set(tail.split()) <= set(said.split())


def test_a_condition_message_as_long_as_the_controller_writes_is_kept_whole() -> None:
    document = identity({"blueprint": "sales", "sponsors": [{"kind": "User", "id": GUID}]})
    said = "x " * 400 + "fix: do this"
    document["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": "Failed", "message": said}]}
    parsed = parse_object(document)
    assert isinstance(parsed, AgentIdentity)
    assert parsed.status.ready is not None
    assert parsed.status.ready.message == said


def test_invalid_values_are_quoted_bounded_and_every_problem_is_counted() -> None:
    spec = {"blueprint": "sales", "clientId": "g" * 100_000, "sponsors": [{"kind": "Robot", "id": "x"}] * 20}
    message = invalid(identity(spec))
    assert len(message) < 2000
    assert "spec.clientId: must be a GUID like 7a1c2f0e-4b5d-4c3e-9f00-123456789abc, got 'ggg" in message
    assert message.endswith("; and 31 more problems")


@pytest.mark.parametrize(
    "status",
    [None, "junk", {"clientId": 7, "conditions": "x"}, {"clientId": "not-a-guid", "conditions": [None, 3]}],
)
def test_a_malformed_status_is_read_as_empty_never_an_error(status: Any) -> None:
    document = identity({"blueprint": "sales", "sponsors": [{"kind": "User", "id": GUID}]})
    document["status"] = status
    parsed = parse_object(document)
    assert isinstance(parsed, AgentIdentity)
    assert (parsed.client_id, parsed.status.ready, parsed.ready) == (None, None, False)


def test_identity_service_accounts_must_be_a_list_of_names() -> None:
    message = invalid(identity({"blueprint": "sales", "clientId": GUID, "serviceAccounts": "sales-agent"}))
    assert message.endswith("spec.serviceAccounts: must be a list, got 'sales-agent'")


def test_integers_must_be_integers_not_strings() -> None:
    spec = {**WI, "credential": {"workloadIdentity": {"expirationSeconds": "7200"}}}
    assert "spec.credential.workloadIdentity.expirationSeconds: Input should be a valid integer" in invalid(
        blueprint(spec)
    )


def test_objects_without_a_namespace_take_the_default_one() -> None:
    document = blueprint(WI)
    del document["metadata"]["namespace"]
    parsed = parse_object(document, default_namespace="team-a")
    assert parsed.ref.namespace == "team-a"


def test_objects_without_a_name_are_not_config() -> None:
    document = blueprint(WI)
    del document["metadata"]["name"]
    with pytest.raises(NotConfig, match=r"AgentBlueprint without metadata\.name"):
        parse_object(document)


def test_other_kinds_are_not_config() -> None:
    with pytest.raises(NotConfig, match="apiVersion='v1' kind='Pod'"):
        parse_object({"apiVersion": "v1", "kind": "Pod"})


def test_a_trailing_newline_does_not_sneak_past_a_pattern() -> None:
    assert "spec.clientId: must be a GUID" in invalid(identity({"blueprint": "sales", "clientId": GUID + "\n"}))
    assert "spec.blueprint: must be a Kubernetes object name" in invalid(
        identity({"blueprint": "sales\n", "clientId": GUID})
    )
