"""The application permissions of every Graph operation the Graph double serves: the one table.

Each row is the "Application" row of the permissions table on the Microsoft Graph v1.0 reference
page named beside it (least and higher privileged permissions together). The Graph
double refuses a call whose token's `roles` hold none of them with Graph's 403
`Authorization_RequestDenied`. `AgentIdentity.CreateAsManager` ("create agent identities linked to
itself") reaches only the identities of the caller's own blueprint: a blueprint may create under
its own app id and get, update and delete the identities it created, never list them, nor read or
change their sponsors.

Which roles a caller may hold is the token double's to say (`tests/doubles/entra.py`): a blueprint
gets `AgentIdentity.CreateAsManager` and nothing else (application permissions cannot be granted to
an agent identity blueprint principal, as the project's design states from the Entra Agent ID
known-issues page, https://learn.microsoft.com/en-us/entra/agent-id/identity-platform/preview-known-issues);
a directory app gets what an admin granted it.
"""

from __future__ import annotations

from dataclasses import dataclass

CREATE_AS_MANAGER = "AgentIdentity.CreateAsManager"
CREATE_ALL = "AgentIdentity.Create.All"
READ_ALL = "AgentIdentity.Read.All"
READ_WRITE_ALL = "AgentIdentity.ReadWrite.All"
ENABLE_DISABLE_ALL = "AgentIdentity.EnableDisable.All"
DELETE_RESTORE_ALL = "AgentIdentity.DeleteRestore.All"
APPLICATION_READ_ALL = "Application.Read.All"

# The one role a blueprint principal holds in these tests.
BLUEPRINT_ROLES = frozenset({CREATE_AS_MANAGER})
# What an admin may grant the directory app, as docs/security/entra-permissions.md asks.
DIRECTORY_ROLES = frozenset({READ_ALL, READ_WRITE_ALL})

REFERENCE = "https://learn.microsoft.com/en-us/graph/api/{page}?view=graph-rest-1.0"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as the reference page writes it
    roles: frozenset[str]  # any one of these allows the call
    page: str  # the v1.0 reference page it comes from

    @property
    def url(self) -> str:
        return REFERENCE.format(page=self.page)

    def allows(self, roles: frozenset[str], own: bool) -> bool:
        """`own`: the identity is of the caller's blueprint (or, for a create, made under its app id)."""
        held = self.roles & roles
        return bool(held - {CREATE_AS_MANAGER}) or (CREATE_AS_MANAGER in held and own)


_BY_ID = "/servicePrincipals/{id}/microsoft.graph.agentIdentity"

OPERATIONS = {
    "create": Operation(
        "POST",
        "/servicePrincipals/microsoft.graph.agentIdentity",
        frozenset({CREATE_ALL, CREATE_AS_MANAGER, READ_WRITE_ALL}),
        "agentidentity-post",
    ),
    "list": Operation(
        "GET",
        "/servicePrincipals/microsoft.graph.agentIdentity",
        frozenset({READ_ALL, READ_WRITE_ALL}),
        "agentidentity-list",
    ),
    "get": Operation(
        "GET", _BY_ID, frozenset({READ_ALL, CREATE_AS_MANAGER, APPLICATION_READ_ALL}), "agentidentity-get"
    ),
    "update": Operation(
        "PATCH", _BY_ID, frozenset({ENABLE_DISABLE_ALL, CREATE_AS_MANAGER, READ_WRITE_ALL}), "agentidentity-update"
    ),
    "delete": Operation("DELETE", _BY_ID, frozenset({DELETE_RESTORE_ALL, CREATE_AS_MANAGER}), "agentidentity-delete"),
    "list sponsors": Operation("GET", _BY_ID + "/sponsors", frozenset({READ_WRITE_ALL}), "agentidentity-list-sponsors"),
    "add sponsor": Operation(
        "POST", _BY_ID + "/sponsors/$ref", frozenset({READ_WRITE_ALL}), "agentidentity-post-sponsors"
    ),
    "remove sponsor": Operation(
        "DELETE", _BY_ID + "/sponsors/{sponsorId}/$ref", frozenset({READ_WRITE_ALL}), "agentidentity-delete-sponsors"
    ),
}
