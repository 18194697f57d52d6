"""`entra-webhook entra-commands`: the az rest commands for the blueprints' federated credentials and the
directory app's grant, and the script run against a stand-in `az` that answers as Graph would."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES
from webhook.cli import main
from webhook.ops.entra import shell

EXPORTED = str(FIXTURES / "exported-config.yaml")
ISSUER = "https://kubernetes.default.svc.cluster.local"
BLUEPRINT_APP = "2f0e9c41-8d2b-4f6a-b1c3-0a9e8d7c6b5a"
DIRECTORY_APP = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"

# A stand-in for the Azure CLI: it logs each call, answers the lookups with fixed ids, and finds the
# credentials and grants listed in $FOUND (empty: none exist yet).
FAKE_AZ = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
method, url = args[args.index("--method") + 1], args[args.index("--url") + 1]
query = args[args.index("--query") + 1] if "--query" in args else ""
found = os.environ.get("FOUND", "")
if method == "post":
    print("new-id" if "--query" in args else "{{}}")
elif "agentIdentityBlueprint?$filter=appId eq" in url:
    print("blueprint-object-id")
elif url.endswith("/federatedIdentityCredentials") or url.endswith("/appRoleAssignments"):
    print("existing-id" if found and found in query else "")
elif "servicePrincipals(appId='00000003-0000-0000-c000-000000000000')" in url:
    print("graph-sp-id")
elif "appRoles" in query:
    print("role-id")
elif "servicePrincipals(appId=" in url:
    sys.exit(1) if os.environ.get("NO_SP") else print("directory-sp-id")
elif "applications(appId=" in url:
    print("directory-app-object-id")
else:
    sys.exit("unexpected call: " + " ".join(args))
"""


def entra_commands(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["entra-commands", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_script(tmp_path: Path, script: str, **env: str) -> list[list[str]]:
    """The script run by sh with the stand-in az first on PATH; every az call, in order."""
    az = tmp_path / "bin" / "az"
    az.parent.mkdir(exist_ok=True)
    az.write_text(FAKE_AZ.format(python=sys.executable))
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "az.log"
    log.write_text("")
    environ = {**os.environ, "PATH": f"{az.parent}{os.pathsep}{os.environ['PATH']}", "AZ_LOG": str(log), **env}
    result = subprocess.run(["sh", "-c", script], env=environ, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return [json.loads(text) for text in log.read_text().splitlines()]


def posts(calls: list[list[str]]) -> list[tuple[str, Any]]:
    return [
        (call[call.index("--url") + 1], json.loads(call[call.index("--body") + 1]))
        for call in calls
        if call[call.index("--method") + 1] == "post"
    ]


def test_a_blueprint_s_federated_credentials_become_az_rest_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = entra_commands(capsys, "--config", EXPORTED)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "set -eu" in lines
    section = lines[lines.index("# AgentBlueprint agents/sales (app " + BLUEPRINT_APP + "): 1 federated "
                                "credential(s), at most 20"):]  # fmt: skip
    assert section[1] == (
        'blueprint=$(az rest --method get --url "https://graph.microsoft.com/beta/applications/'
        f"microsoft.graph.agentIdentityBlueprint?\\$filter=appId eq '{BLUEPRINT_APP}'&\\$select=id\" --query "
        '"value[0].id" --output tsv)'
    )
    collection = (
        '"https://graph.microsoft.com/beta/applications/${blueprint}/microsoft.graph.agentIdentityBlueprint/'
        'federatedIdentityCredentials"'
    )
    assert (
        section[3]
        == f"# system:serviceaccount:agents:sales-agent (issuer {ISSUER}, audience api://AzureADTokenExchange)"
    )
    assert section[4] == (
        f"if [ -z \"$(az rest --method get --url {collection} --query \"value[?issuer=='{ISSUER}' && "
        "subject=='system:serviceaccount:agents:sales-agent'].id\" --output tsv)\" ]; then"
    )
    assert section[5] == (
        f"  az rest --method post --url {collection} --headers Content-Type=application/json --body "
        '\'{"name": "agents-sales-agent", "issuer": "' + ISSUER + '", "subject": '
        '"system:serviceaccount:agents:sales-agent", "audiences": ["api://AzureADTokenExchange"]}\''
    )


def test_the_script_runs_and_adds_only_what_is_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    _, script, _ = entra_commands(capsys, "--config", EXPORTED)
    calls = run_script(tmp_path, script)
    assert posts(calls) == [
        (
            "https://graph.microsoft.com/beta/applications/blueprint-object-id/microsoft.graph.agentIdentityBlueprint/"
            "federatedIdentityCredentials",
            {
                "name": "agents-sales-agent",
                "issuer": ISSUER,
                "subject": "system:serviceaccount:agents:sales-agent",
                "audiences": ["api://AzureADTokenExchange"],
            },
        )
    ]
    again = run_script(tmp_path, script, FOUND="system:serviceaccount:agents:sales-agent")
    assert posts(again) == []  # run twice: nothing added twice


def test_the_directory_app_gets_its_credential_its_service_principal_and_its_grant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, script, _ = entra_commands(
        capsys, "--config", EXPORTED, "--directory-client-id", DIRECTORY_APP.upper(),
        "--controller-service-account", "entra-system:entra-webhook-controller",
    )  # fmt: skip
    assert code == 0
    assert (
        "# It needs AgentIdentity.ReadWrite.All on Microsoft Graph, granted by a Privileged Role Administrator."
        in script
    )
    calls = run_script(tmp_path, script, NO_SP="1")
    assert posts(calls)[1:] == [
        (
            "https://graph.microsoft.com/v1.0/applications/directory-app-object-id/federatedIdentityCredentials",
            {
                "name": "k8s-entra-system-entra-webhook-controller",
                "issuer": ISSUER,  # as the blueprints' status has it
                "subject": "system:serviceaccount:entra-system:entra-webhook-controller",
                "audiences": ["api://AzureADTokenExchange"],
            },
        ),
        ("https://graph.microsoft.com/v1.0/servicePrincipals", {"appId": DIRECTORY_APP}),
        (
            "https://graph.microsoft.com/v1.0/servicePrincipals/new-id/appRoleAssignments",
            {"principalId": "new-id", "resourceId": "graph-sp-id", "appRoleId": "role-id"},
        ),
    ]
    role_lookup = next(call for call in calls if "appRoles" in " ".join(call))
    assert role_lookup[role_lookup.index("--query") + 1] == "appRoles[?value=='AgentIdentity.ReadWrite.All'].id | [0]"
    granted = run_script(tmp_path, script, FOUND="role-id")  # the grant exists: asked for, not made again
    assert not [url for url, _ in posts(granted) if url.endswith("/appRoleAssignments")]


def test_read_only_directory_permission_is_granted_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    _, script, _ = entra_commands(capsys, "--config", EXPORTED, "--directory-client-id", DIRECTORY_APP,
                                  "--directory-permission", "AgentIdentity.Read.All")  # fmt: skip
    assert "appRoles[?value=='AgentIdentity.Read.All'].id | [0]" in script
    assert "ReadWrite" not in script


def test_a_blueprint_whose_status_lists_nothing_yet_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    exported = yaml.safe_load((FIXTURES / "exported-config.yaml").read_text())
    del exported["items"][0]["status"]
    (tmp_path / "waiting.yaml").write_text(yaml.safe_dump(exported))
    code, out, err = entra_commands(capsys, "--config", str(tmp_path / "waiting.yaml"))
    assert code == 0
    assert (
        f"# AgentBlueprint agents/sales (app {BLUEPRINT_APP}): its status lists no federated credential yet; the "
        "controller writes them once it has seen the blueprint's AgentIdentities: run entra-commands again then"
    ) in out
    assert "az rest" not in out
    assert (
        err == "warning: AgentBlueprint agents/sales lists no federated credential yet (is the controller running?)\n"
    )


def test_client_secret_blueprints_need_no_federated_credential(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = entra_commands(capsys, "--config", str(FIXTURES / "config.yaml"), "--blueprint", "support")
    assert "# AgentBlueprint agents/support: not on workload identity federation (a client secret or envFrom)" in out


def test_a_directory_client_id_that_is_no_guid_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = entra_commands(capsys, "--config", EXPORTED, "--directory-client-id", "my-app")
    assert code == 2
    assert err == (
        "entra-webhook entra-commands: --directory-client-id wants the directory app's client id (a GUID), "
        "got 'my-app'\n"
    )


@pytest.mark.parametrize("value", ["plain", "a $HOME b", 'say "hi"', "back\\slash `cmd`"])
def test_shell_quoting_keeps_values_literal(value: str) -> None:
    result = subprocess.run(["sh", "-c", f"printf %s {shell(value)}"], capture_output=True, text=True, check=True)
    assert result.stdout == value


def test_shell_quoting_expands_only_the_variables_named() -> None:
    quoted = shell("https://x/{blueprint}/$filter", "blueprint")
    result = subprocess.run(
        ["sh", "-c", f"blueprint=ID; printf %s {quoted}"], capture_output=True, text=True, check=True
    )
    assert result.stdout == "https://x/ID/$filter"
