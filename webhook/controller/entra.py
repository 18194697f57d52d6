"""Agent identities as Graph returns them, and Graph's errors: plain data, read without I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

CAST = "microsoft.graph.agentIdentity"


class GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.outcome_unknown = outcome_unknown  # the request may have been carried out (no answer, or 5xx)
        self.retry_after = retry_after  # what Graph asked for on 429 and 503
        self.operation = ""  # what was asked: "create", "get", "list", "list sponsors", ...
        self.caller = ""  # as whom: 'blueprint <app id>' or 'directory app <app id>'


@dataclass(frozen=True, slots=True)
class EntraIdentity:
    """An agent identity as Graph returns it, with the fields the controller reads."""

    id: str  # the object id, which Graph's paths take
    client_id: str  # its appId: what the sidecar's AgentIdentity parameter takes (equal to `id`)
    display_name: str
    blueprint_id: str  # agentIdentityBlueprintId: the blueprint's app id
    tags: tuple[str, ...]
    created: str  # createdDateTime, as Graph wrote it ("" when absent)

    @classmethod
    def parse(cls, value: object) -> EntraIdentity:
        """Graph's JSON, or a `GraphError` naming what is missing (never a KeyError deep inside)."""
        if not isinstance(value, Mapping) or not isinstance(value.get("id"), str) or not value["id"]:
            raise GraphError(0, "MalformedAnswer", "Graph's answer holds no agent identity with an id")
        object_id = str(value["id"]).lower()
        app_id = value.get("appId")
        tags = value.get("tags")
        return cls(
            id=object_id,
            client_id=app_id.lower() if isinstance(app_id, str) and app_id else object_id,
            display_name=str(value.get("displayName") or ""),
            blueprint_id=str(value.get("agentIdentityBlueprintId") or "").lower(),
            tags=tuple(str(tag) for tag in tags) if isinstance(tags, list) else (),
            created=str(value.get("createdDateTime") or ""),
        )
