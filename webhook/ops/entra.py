"""`entra-webhook entra-commands`: the Azure CLI (`az rest` against Microsoft Graph) commands an Entra admin runs
for what the cluster needs from Entra, so that nobody copies an issuer or a subject by hand:

- each federated credential the AgentBlueprints' `status.federatedCredentials` lists (the controller writes it;
  a blueprint may not add credentials to itself): Graph's federatedIdentityCredential create for an
  agentIdentityBlueprint, `POST /beta/applications/{id}/microsoft.graph.agentIdentityBlueprint/
  federatedIdentityCredentials` (learn.microsoft.com/graph/api/federatedidentitycredential-post?view=graph-rest-beta);
- with a directory app (the controller's optional second credential): its federated credential for the
  controller's service account (`POST /v1.0/applications/{id}/federatedIdentityCredentials`) and its
  application permission on Microsoft Graph, `POST /v1.0/servicePrincipals/{id}/appRoleAssignments`
  (learn.microsoft.com/graph/api/serviceprincipal-post-approleassignments).

The output is a POSIX shell script. Running it again changes nothing: each credential and grant is made only
when a GET finds it missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webhook import __version__
from webhook.common.errors import UsageError
from webhook.common.kubeapi import api_errors, call, describe_api_error, list_raw, user_client
from webhook.common.models import BLUEPRINT, DEFAULT_AUDIENCE, AgentBlueprint, is_config, parse_object
from webhook.common.settings import flag_name
from webhook.core.documents import load_documents
from webhook.core.workloads import flatten

GRAPH = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's own application id
PERMISSIONS = ("AgentIdentity.ReadWrite.All", "AgentIdentity.Read.All")
MAX_CREDENTIALS = 20  # per blueprint, Entra's limit
DEFAULT_CONTROLLER = "entra-system:entra-webhook-controller"
DIRECTORY_FIELD = "directory_client_id"  # the controller's setting: --directory-client-id, or its env var
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True, slots=True)
class Credential:
    name: str
    issuer: str
    subject: str
    audience: str


@dataclass(frozen=True, slots=True)
class Blueprint:
    namespace: str
    name: str
    app_id: str | None
    workload_identity: bool
    credentials: tuple[Credential, ...]


def shell(text: str, *variables: str) -> str:
    """`text` in double quotes for a POSIX shell, every `$` escaped except the `{variable}`s named, which expand."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    for variable in variables:
        escaped = escaped.replace("{" + variable + "}", "${" + variable + "}")
    return f'"{escaped}"'


def _literal(value: str) -> str:
    """A JMESPath raw string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _credential_body(credential: Credential) -> str:
    body = {
        "name": credential.name,
        "issuer": credential.issuer,
        "subject": credential.subject,
        "audiences": [credential.audience],
    }
    return shlex.quote(json.dumps(body))


def _add_credential(lines: list[str], collection: str, variable: str, credential: Credential) -> None:
    """A GET that looks for the issuer and subject, and the POST only when it finds none."""
    query = f"value[?issuer=={_literal(credential.issuer)} && subject=={_literal(credential.subject)}].id"
    lines += [
        f"# {credential.subject} (issuer {credential.issuer}, audience {credential.audience})",
        f'if [ -z "$(az rest --method get --url {shell(collection, variable)} --query {shell(query)} --output tsv)" ]'
        "; then",
        f"  az rest --method post --url {shell(collection, variable)} --headers Content-Type=application/json "
        f"--body {_credential_body(credential)}",
        "fi",
    ]


def blueprint_commands(blueprint: Blueprint, graph: str) -> list[str]:
    where = f"AgentBlueprint {blueprint.namespace}/{blueprint.name}"
    if not blueprint.workload_identity:
        return [f"# {where}: not on workload identity federation (a client secret or envFrom): nothing to add"]
    if blueprint.app_id is None:
        return [f"# {where}: no spec.clientId, so its app is unknown here: add its credentials by hand"]
    if not blueprint.credentials:
        return [
            f"# {where} (app {blueprint.app_id}): its status lists no federated credential yet; the controller "
            "writes them once it has seen the blueprint's AgentIdentities: run entra-commands again then"
        ]
    count = len(blueprint.credentials)
    lines = [f"# {where} (app {blueprint.app_id}): {count} federated credential(s), at most {MAX_CREDENTIALS}"]
    if count > MAX_CREDENTIALS:
        lines.append(f"# more than {MAX_CREDENTIALS}: Entra refuses the rest; let Pods share service accounts")
    lookup = (
        f"{graph}/beta/applications/microsoft.graph.agentIdentityBlueprint?$filter=appId eq "
        f"'{blueprint.app_id}'&$select=id"
    )
    lines.append(f'blueprint=$(az rest --method get --url {shell(lookup)} --query "value[0].id" --output tsv)')
    lines.append(
        f'[ -n "$blueprint" ] || {{ echo "no agent identity blueprint with app id {blueprint.app_id}" >&2; exit 1; }}'
    )
    collection = (
        f"{graph}/beta/applications/{{blueprint}}/microsoft.graph.agentIdentityBlueprint/federatedIdentityCredentials"
    )
    for credential in blueprint.credentials:
        _add_credential(lines, collection, "blueprint", credential)
    return lines


def directory_commands(app_id: str, permission: str, credential: Credential, graph: str) -> list[str]:
    """The directory app's federated credential for the controller, its service principal, and its grant."""
    v1 = f"{graph}/v1.0"
    assignments = shell(f"{v1}/servicePrincipals/{{directory_sp}}/appRoleAssignments", "directory_sp")
    role_query = f"appRoles[?value=={_literal(permission)}].id | [0]"
    grant = '{"principalId": "{directory_sp}", "resourceId": "{graph_sp}", "appRoleId": "{role}"}'
    grant_query = "value[?appRoleId=='{role}' && resourceId=='{graph_sp}'].id"
    lines = [
        f"# The directory app (app {app_id}): the controller signs in as it, with its own service account's",
        "# token, for what a blueprint may not do (list agent identities, read and change sponsors).",
        f"# It needs {permission} on Microsoft Graph, granted by a Privileged Role Administrator.",
        f"directory_app=$(az rest --method get --url {shell(f'{v1}/applications(appId=' + repr(app_id) + ')')} "
        "--query id --output tsv)",
        f'[ -n "$directory_app" ] || {{ echo "no app registration with app id {app_id}" >&2; exit 1; }}',
    ]
    _add_credential(lines, f"{v1}/applications/{{directory_app}}/federatedIdentityCredentials", "directory_app",
                    credential)  # fmt: skip
    lines += [
        f"directory_sp=$(az rest --method get --url {shell(f'{v1}/servicePrincipals(appId=' + repr(app_id) + ')')} "
        "--query id --output tsv 2>/dev/null || true)",
        'if [ -z "$directory_sp" ]; then',
        f"  directory_sp=$(az rest --method post --url {shell(f'{v1}/servicePrincipals')} --headers "
        f"Content-Type=application/json --body {shlex.quote(json.dumps({'appId': app_id}))} --query id --output tsv)",
        "fi",
        f"graph_sp=$(az rest --method get --url {shell(f'{v1}/servicePrincipals(appId=' + repr(GRAPH_APP_ID) + ')')} "
        "--query id --output tsv)",
        f"role=$(az rest --method get --url {shell(f'{v1}/servicePrincipals/{{graph_sp}}', 'graph_sp')} --query "
        f"{shell(role_query)} --output tsv)",
        f'[ -n "$role" ] || {{ echo "Microsoft Graph offers no {permission} in this tenant" >&2; exit 1; }}',
        f"# {permission} on Microsoft Graph",
        f'if [ -z "$(az rest --method get --url {assignments} --query {shell(grant_query, "role", "graph_sp")} '
        '--output tsv)" ]; then',
        f"  az rest --method post --url {assignments} "
        f"--headers Content-Type=application/json --body {shell(grant, 'directory_sp', 'graph_sp', 'role')}",
        "fi",
    ]
    return lines


def script(
    blueprints: Sequence[Blueprint],
    directory: tuple[str, str, Credential] | None,
    source: str,
    graph: str = GRAPH,
) -> str:
    lines = [
        "#!/bin/sh",
        f"# Generated by entra-webhook {__version__} entra-commands from {source}.",
        "# Run as an Entra admin signed in to the blueprints' tenant (az login --tenant TENANT): an Agent ID",
        "# Administrator, or an owner of each blueprint, may add its federated credentials. Running it again",
        "# changes nothing: each credential and grant is made only when it is missing.",
        "set -eu",
    ]
    for blueprint in blueprints:
        lines += ["", *blueprint_commands(blueprint, graph)]
    if directory is not None:
        lines += ["", *directory_commands(*directory, graph)]
    if not blueprints and directory is None:
        lines += ["", "# no AgentBlueprint found: nothing to do"]
    return "\n".join(lines) + "\n"


def blueprint_of(raw: dict[str, Any]) -> Blueprint | None:
    parsed = parse_object(raw)
    if not isinstance(parsed, AgentBlueprint):
        return None
    status = raw["status"] if isinstance(raw.get("status"), dict) else {}
    credentials = tuple(
        Credential(
            str(item.get("name") or f"k8s-{parsed.ref.namespace}-{parsed.ref.name}-{index}")[:120],
            str(item["issuer"]),
            str(item["subject"]),
            str(item.get("audience") or DEFAULT_AUDIENCE),
        )
        for index, item in enumerate(status.get("federatedCredentials") or [])
        if isinstance(item, dict) and item.get("issuer") and item.get("subject")
    )
    credential = parsed.spec.credential
    return Blueprint(
        parsed.ref.namespace,
        parsed.ref.name,
        parsed.spec.client_id,
        bool(credential and credential.workload_identity),
        credentials,
    )


def _from_files(paths: Iterable[Path]) -> list[dict[str, Any]]:
    found = []
    for file in paths:
        for document in flatten(load_documents(file.read_text(encoding="utf-8"), str(file))):
            if isinstance(document, dict) and is_config(document) and document.get("kind") == BLUEPRINT:
                found.append(document)
    return found


def _controller_deployment(api: Any, namespace: str) -> tuple[str | None, str | None]:
    """The directory app's client id and the service account the controller's Deployment gives it, if any."""
    answer = call(api, "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")
    for deployment in (answer.body or {}).get("items") or [] if answer.ok else []:
        spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in spec.get("containers") or []:
            args = container.get("args") or []
            if not args or args[0] != "controller":
                continue
            client_id = next((a.split("=", 1)[1] for a in args if a.startswith(flag_name(DIRECTORY_FIELD) + "=")), None)
            env = {e.get("name"): e.get("value") for e in container.get("env") or []}
            client_id = client_id or env.get("ENTRA_CONTROLLER_" + DIRECTORY_FIELD.upper())
            account = spec.get("serviceAccountName")
            return client_id, f"{namespace}:{account}" if account else None
    return None, None


def _issuer(api: Any) -> str | None:
    answer = call(api, "GET", "/.well-known/openid-configuration")
    return str(answer.body.get("issuer")) if answer.ok and isinstance(answer.body, dict) else None


def run_entra_commands(args: argparse.Namespace) -> int:
    api = None
    if args.config:
        raws = _from_files(args.config)
        source = ", ".join(str(path) for path in args.config)
    else:
        api = user_client(args.kubeconfig, args.context)
        try:
            raws = [raw for raw, parsed in list_raw(api, args.namespace) if parsed.ref.kind == BLUEPRINT]
        except api_errors() as error:
            raise UsageError(f"cannot list AgentBlueprints: {describe_api_error(error)}") from None
        source = f"the cluster at {api.configuration.host}"
    blueprints = [
        found
        for raw in raws
        if (found := blueprint_of({**raw, "kind": BLUEPRINT, "apiVersion": "entra.io/v1alpha1"})) is not None
        and (args.namespace is None or found.namespace == args.namespace)
        and (args.blueprint is None or found.name == args.blueprint)
    ]
    blueprints.sort(key=lambda b: (b.namespace, b.name))
    directory_id, account = args.directory_client_id, args.controller_service_account
    if api is not None and (directory_id is None or account is None):
        found_id, found_account = _controller_deployment(api, (account or DEFAULT_CONTROLLER).split(":")[0])
        directory_id, account = directory_id or found_id, account or found_account
    directory = None
    if directory_id:
        if not _GUID.fullmatch(directory_id):
            raise UsageError(
                f"--directory-client-id wants the directory app's client id (a GUID), got {directory_id!r}"
            )
        issuer = args.issuer or next((c.issuer for b in blueprints for c in b.credentials), None)
        issuer = issuer or (_issuer(api) if api is not None else None)
        if issuer is None:
            raise UsageError("the cluster's service-account issuer is unknown here: pass --issuer URL")
        namespace, _, name = (account or DEFAULT_CONTROLLER).partition(":")
        credential = Credential(f"k8s-{namespace}-{name}"[:120], issuer, f"system:serviceaccount:{namespace}:{name}",
                                DEFAULT_AUDIENCE)  # fmt: skip
        directory = (directory_id.lower(), args.directory_permission, credential)
    sys.stdout.write(script(blueprints, directory, source, args.graph.rstrip("/")))
    waiting = [b for b in blueprints if b.workload_identity and b.app_id and not b.credentials]
    for blueprint in waiting:
        print(f"warning: AgentBlueprint {blueprint.namespace}/{blueprint.name} lists no federated credential yet "
              "(is the controller running?)", file=sys.stderr)  # fmt: skip
    return 0


def entra_flags(flags: Any) -> None:
    """`entra-commands`' flags (a `webhook.common.settings.Flags`)."""
    flags.add("--kubeconfig", type=Path, metavar="PATH", help="read the AgentBlueprints from this cluster",
              default_text="$KUBECONFIG, else ~/.kube/config, else the in-cluster service account")  # fmt: skip
    flags.add("--context", metavar="NAME", help="the kubeconfig context to use", default_text="its current context")
    flags.add("--config", action="append", type=Path, default=[], metavar="PATH", default_text="none: the cluster",
              help="read the AgentBlueprints from this file instead, e.g. what kubectl get agentblueprints -A -o yaml "
              "prints (repeatable)")  # fmt: skip
    flags.add("-n", "--namespace", metavar="NAME", help="only this namespace's blueprints",
              default_text="every namespace")  # fmt: skip
    flags.add("--blueprint", metavar="NAME", help="only the blueprint of this name", default_text="every blueprint")
    flags.add("--directory-client-id", metavar="GUID", default_text="the controller Deployment's, else none",
              help="the directory app the controller uses: print its federated credential and grant")  # fmt: skip
    flags.add("--directory-permission", choices=PERMISSIONS, default=PERMISSIONS[0], default_text=PERMISSIONS[0],
              help="what the directory app is granted on Microsoft Graph: ReadWrite lets the controller sync "
              "sponsors, Read only list")  # fmt: skip
    flags.add("--controller-service-account", metavar="NAMESPACE:NAME", help="the controller's service account",
              default_text=f"the controller Deployment's, else {DEFAULT_CONTROLLER}")  # fmt: skip
    flags.add("--issuer", metavar="URL", help="the cluster's service-account issuer, for the directory app",
              default_text="the blueprints' status, else the cluster's /.well-known/openid-configuration")  # fmt: skip
    flags.add("--graph", metavar="URL", default=GRAPH, default_text=GRAPH,
              help="Microsoft Graph's root (sovereign clouds have their own)")  # fmt: skip
