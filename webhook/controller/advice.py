"""What to do about each failure: the words and the exact commands the conditions carry.

Every refusal names the permission Graph's v1.0 reference requires for that call and the credential
that made it (docs/security/entra-permissions.md has the table and the pages).
"""

from __future__ import annotations

import json

from webhook.common.models import ObjectRef
from webhook.controller.entra import CAST, GraphError

READ_ALL, READ_WRITE_ALL = "AgentIdentity.Read.All", "AgentIdentity.ReadWrite.All"
CREATE_AS_MANAGER = "AgentIdentity.CreateAsManager"
DENIED = "Authorization_RequestDenied"
DOCS = "docs/security/entra-permissions.md"

# The application permissions each call needs, as the v1.0 reference pages list them, and who holds them here.
NEEDS = {
    "create": f"{CREATE_AS_MANAGER} (held by every blueprint, for identities under its own app id)",
    "get": f"{CREATE_AS_MANAGER} (a blueprint, for the identities it made) or {READ_ALL}",
    "update": f"{CREATE_AS_MANAGER} (a blueprint, for the identities it made) or {READ_WRITE_ALL}",
    "delete": f"{CREATE_AS_MANAGER} (a blueprint, for the identities it made)",
    "list": f"{READ_ALL} or {READ_WRITE_ALL}, which a blueprint cannot hold (the directory app's)",
    "list sponsors": f"{READ_WRITE_ALL}, which a blueprint cannot hold (the directory app's)",
    "add sponsor": f"{READ_WRITE_ALL}, which a blueprint cannot hold (the directory app's)",
    "remove sponsor": f"{READ_WRITE_ALL}, which a blueprint cannot hold (the directory app's)",
}

GRAPH_ADVICE = {
    "AgentIdentity_LimitExceeded": (
        "the blueprint has reached its limit of agent identities (250, soft-deleted ones included): delete "
        "identities you no longer use, or purge soft-deleted ones (Graph: DELETE /directory/deletedItems/ID)"
    ),
    "Error_AgentIdentitySelfCreateRequired": (
        "a blueprint may only create agent identities under its own app id: check the AgentBlueprint's clientId"
    ),
    "AgentIdentity_AgentBlueprintPrincipalDoesNotExist": (
        "the blueprint has no service principal in this tenant: an admin creates it once "
        "(Graph: POST /servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal with its appId)"
    ),
    "AgentIdentity_IncompatibleParentType": "the AgentBlueprint's clientId is not an agent identity blueprint",
    "Request_ResourceNotFound": "a sponsor does not exist: check the user and group object ids in spec.sponsors",
    "InvalidAuthenticationToken": "Graph refused the token: check the authority and tenant",
    "TooManyRequests": "Graph is throttling: the controller retries after the time it asks for",
    "TransportError": "Graph could not be reached: check the network and --graph-url",
    "MalformedAnswer": "Graph's answer was not what its reference describes: check --graph-url",
}

TOKEN_ADVICE = {
    "AADSTS700016": "the clientId or tenantId is wrong",
    "AADSTS90002": "the tenantId is wrong",
    "AADSTS7000215": "the Secret holds a wrong client secret value (the value, not its id)",
    "AADSTS7000222": "the client secret has expired: add a new one to the blueprint and update the Secret",
    "AADSTS70021": "add the federated credential listed in the AgentBlueprint's status to the blueprint",
    "AADSTS700211": "the issuer differs from the blueprint's federated credentials: add the one in the "
    "AgentBlueprint's status",
    "AADSTS700212": "the audience differs from the blueprint's federated credential (want api://AzureADTokenExchange)",
    "AADSTS700213": "no federated credential for the controller's service account: add the one listed in the "
    "AgentBlueprint's status to the blueprint",
    "AADSTS700024": "the projected token has expired: check the node's clock and that the token volume is mounted",
    "AADSTS700027": "the token's signature did not verify against the cluster issuer's published keys",
    "AADSTS50027": "the controller's token file does not hold a JWT: check --token-file",
    "TokenEndpointUnreachable": "the token endpoint could not be reached: check the blueprint's instance, "
    "--authority-host and --token-file",
}

# The directory app's federated credential is the admin's to add, with the controller's subject.
DIRECTORY_TOKEN_ADVICE = {
    "AADSTS700016": "the directory app is not registered in this tenant: register it, or consent to it here",
    "AADSTS70021": "add a federated credential for the controller's service account to the directory app",
    "AADSTS700211": "add a federated credential for the controller's service account to the directory app",
    "AADSTS700212": "the directory app's federated credential must have audience api://AzureADTokenExchange",
    "AADSTS700213": "add a federated credential for the controller's service account to the directory app",
}


def graph_advice(code: str) -> str:
    return GRAPH_ADVICE.get(code, "see Graph's message")


def token_advice(code: str, directory: bool = False) -> str:
    if directory and code in DIRECTORY_TOKEN_ADVICE:
        return DIRECTORY_TOKEN_ADVICE[code]
    return TOKEN_ADVICE.get(code, "see the AADSTS code in Entra's error reference")


def refusal(error: GraphError) -> str:
    """What Graph answered, to what and as whom, and what to do: a 403 names the permission."""
    answered = f"Graph answered {error.status} {error.code}" if error.status else f"no answer ({error.code})"
    what = f" to {error.operation} as {error.caller}" if error.operation else ""
    if error.code == DENIED:
        needs = NEEDS.get(error.operation, "a permission the caller lacks")
        grant = READ_ALL if error.operation == "list" else READ_WRITE_ALL
        fix = (
            f"grant the directory app {grant} (admin consent; {DOCS})"
            if error.caller.startswith("directory")
            else "a blueprint manages only the agent identities it created under its own app id: name one of those"
        )
        return f"{answered}{what}: {error.operation or 'this call'} needs {needs}; {fix}"
    return f"{answered}{what}: {error.message} ({graph_advice(error.code)})"


def grant_commands(secret: ObjectRef, controller: tuple[str, str]) -> str:
    """The two kubectl commands that give the controller its one Secret, and nothing else."""
    name = f"entra-controller-{secret.name}"[:63].rstrip("-.")
    namespace, account = controller
    return (
        f"kubectl create role {name} -n {secret.namespace} --verb=get --resource=secrets "
        f"--resource-name={secret.name} && kubectl create rolebinding {name} -n {secret.namespace} "
        f"--role={name} --serviceaccount={namespace}:{account}"
    )


# -- what only an admin can find out ------------------------------------------------------------


def find_command(graph_url: str, marker: str) -> str:
    """The admin's lookup of an identity by our marker tag (an admin holds AgentIdentity.Read.All)."""
    quoted = marker.replace("'", "''")
    url = (
        f"{graph_url.rstrip('/')}/servicePrincipals/{CAST}?\\$filter=tags/any(t:t eq '{quoted}')"
        "&\\$select=id,displayName,agentIdentityBlueprintId,createdDateTime"
    )
    return f'az rest --method get --url "{url}"'


def status_command(ref: ObjectRef, status: dict[str, object]) -> str:
    """A merge patch of the resource's status, the record the controller keeps (kubectl 1.24 or newer)."""
    body = json.dumps({"status": status}, separators=(",", ":"))
    return f"kubectl patch agentidentity {ref.name} -n {ref.namespace} --subresource=status --type=merge -p '{body}'"


def retain_command(ref: ObjectRef) -> str:
    body = json.dumps({"spec": {"deletionPolicy": "Retain"}}, separators=(",", ":"))
    return f"kubectl patch agentidentity {ref.name} -n {ref.namespace} --type=merge -p '{body}'"


def unconfirmed(ref: ObjectRef, graph_url: str, marker: str, since: str, deleting: bool) -> str:
    """A create whose answer was lost, which the blueprint alone cannot look for (no list)."""
    what = "deleted while the answer to a create" if deleting else "the answer to a create"
    found = "so that it is deleted too" if deleting else "to use it"
    message = (
        f"{what} sent at {since} (marker tag {marker}) was lost, and a blueprint may not list agent identities "
        f"({READ_ALL}): nothing is created again blindly. Find it: {find_command(graph_url, marker)}; "
        f"if found, record its id {found}: {status_command(ref, {'clientId': 'ID', 'pendingCreate': None})}; "
        f"if not, say so: {status_command(ref, {'pendingCreate': None})}"
    )
    if deleting:
        return f"{message}; or keep whatever exists: {retain_command(ref)}"
    return f"{message}; or give the controller a directory credential ({DOCS})"


def sponsors_unsynced(directory_refusal: str | None, graph_url: str, object_id: str, tags: list[str]) -> str:
    """Sponsors the spec changed since the controller set them, which it may not read or change; and how an
    admin who changed them by hand tells the controller so (the tags it reads instead of the sponsors)."""
    why = (
        directory_refusal
        if directory_refusal
        else f"reading and changing an agent identity's sponsors needs {READ_WRITE_ALL}, which a blueprint cannot "
        f"hold, and the controller has no directory credential"
    )
    url = f"{graph_url.rstrip('/')}/servicePrincipals/{object_id}/{CAST}"
    body = json.dumps({"tags": tags}, separators=(",", ":"))
    return (
        "spec.sponsors differ from the sponsors the controller set in Entra (or were never checked), and it "
        f"cannot apply them: {why}. Pods keep getting this identity. Give the controller a directory app with "
        f"{READ_WRITE_ALL} ({DOCS}), or change them yourself (Graph: POST and DELETE {url}/sponsors/$ref) and "
        f"then record that: az rest --method patch --url \"{url}\" --headers OData-Version=4.0 --body '{body}'"
    )
