"""The controller's settings: flags over ENTRA_CONTROLLER_* env vars, clear errors, who it runs as."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from webhook.cli import main
from webhook.common.settings import SettingsError
from webhook.controller.run import controller_account
from webhook.controller.settings import ControllerSettings, load_controller_settings


def test_flags_win_over_env_and_env_over_defaults() -> None:
    settings = load_controller_settings(
        {"cluster_name": "prod-eu", "graph_url": None},
        {"ENTRA_CONTROLLER_CLUSTER_NAME": "ignored", "ENTRA_CONTROLLER_GRAPH_URL": "https://graph.microsoft.us/v1.0"},
    )
    assert (settings.cluster_name, settings.graph_url) == ("prod-eu", "https://graph.microsoft.us/v1.0")
    assert settings.lease_name == "entra-webhook-controller"


def test_a_bad_setting_names_both_spellings() -> None:
    with pytest.raises(SettingsError) as refused:
        load_controller_settings({"graph_url": "http://graph"}, {})
    assert str(refused.value) == (
        "invalid settings: --graph-url (ENTRA_CONTROLLER_GRAPH_URL): must be an absolute https URL, got http://graph"
    )


def test_the_directory_app_is_optional_a_guid_and_says_what_it_is_for() -> None:
    assert load_controller_settings({}, {}).directory_client_id is None
    given = load_controller_settings(
        {}, {"ENTRA_CONTROLLER_DIRECTORY_CLIENT_ID": "4D5E6F70-8192-4A3B-9C4D-5E6F708192A3"}
    )
    assert given.directory_client_id == "4d5e6f70-8192-4a3b-9c4d-5e6f708192a3"
    with pytest.raises(SettingsError) as refused:
        load_controller_settings({"directory_client_id": "my-app"}, {})
    assert str(refused.value).startswith(
        "invalid settings: --directory-client-id (ENTRA_CONTROLLER_DIRECTORY_CLIENT_ID): must be a GUID like"
    )
    description = ControllerSettings.model_fields["directory_client_id"].description or ""
    assert "AgentIdentity.Read.All or AgentIdentity.ReadWrite.All" in description


def test_without_a_cluster_the_command_says_what_it_needs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["controller"]) == 2
    assert capsys.readouterr().err == (
        "entra-webhook controller: needs the cluster API: run it in the cluster or pass --kubeconfig\n"
    )


def _token(subject: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"sub": subject}).encode()).decode().rstrip("=")
    return f"e30.{payload}.sig"


def test_the_service_account_comes_from_the_projected_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(_token("system:serviceaccount:platform:provisioner"))
    settings = load_controller_settings({"token_file": str(token)}, {})
    assert controller_account(settings) == ("platform", "provisioner")


def test_the_service_account_setting_wins_and_the_default_is_the_manifests(tmp_path: Path) -> None:
    assert controller_account(load_controller_settings({"service_account": "a:b"}, {})) == ("a", "b")
    missing = load_controller_settings({"token_file": str(tmp_path / "none")}, {})
    assert controller_account(missing) == ("entra-system", "entra-webhook-controller")
