"""The controller's settings: flags and `ENTRA_CONTROLLER_*` env vars, validated once at start."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from webhook.common.models import Guid
from webhook.common.settings import load_model

ENV_PREFIX = "ENTRA_CONTROLLER_"
DEFAULT_GRAPH = "https://graph.microsoft.com/v1.0"
DEFAULT_TOKEN_FILE = Path("/var/run/secrets/entra.io/controller/token")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def _https(value: str) -> str:
    if not value.startswith("https://") or len(value) <= len("https://"):
        raise PydanticCustomError("https", "must be an absolute https URL, got {value}", {"value": value})
    return value


def _name(value: str) -> str:
    if len(value) > 63 or not _NAME.fullmatch(value):
        raise PydanticCustomError(
            "name", "must be a DNS label-like name of at most 63 characters, got {value}", {"value": value}
        )
    return value


HttpsUrl = Annotated[str, AfterValidator(_https)]
Name = Annotated[str, AfterValidator(_name)]
Seconds = Annotated[float, Field(gt=0)]


class ControllerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kubeconfig: Path | None = None  # else the in-cluster service account
    graph_url: HttpsUrl = DEFAULT_GRAPH
    authority_host: HttpsUrl | None = None  # else the blueprint's spec.instance, else login.microsoftonline.com
    ca_file: Path | None = None  # trust for Graph and the token endpoint (default: the system's)
    token_file: Path = DEFAULT_TOKEN_FILE  # projected token, audience api://AzureADTokenExchange
    cluster_name: Name = "kubernetes"  # goes into the marker tag on every identity it creates
    directory_client_id: Guid | None = Field(
        default=None,
        description=(
            "Client id of an optional directory app (workload identity federation with the controller's "
            "token file) that an admin granted AgentIdentity.Read.All or AgentIdentity.ReadWrite.All: "
            "with it the controller lists identities (to resolve a create whose answer was lost, and "
            "to find what a deleted resource left behind) and, with ReadWrite.All, syncs sponsors. "
            "Without it, only what the blueprint itself may do (docs/security/entra-permissions.md)"
        ),
    )
    namespace: Name | None = None  # reconcile only this namespace (default: all)
    lease_name: Name = "entra-webhook-controller"
    lease_namespace: Name = "entra-system"
    lease_seconds: Seconds = 15.0
    renew_seconds: Seconds = 5.0
    resync_seconds: Seconds = 600.0
    backoff_seconds: Seconds = 1.0  # first retry of a failed reconcile; doubles, with jitter
    backoff_max_seconds: Seconds = 300.0
    retry_after_max_seconds: Seconds = 60.0  # longest Retry-After honoured inside one call
    # How long Graph may take to show a fresh identity: reads that 404 after a create, and lists that
    # do not show a create whose answer was lost (waited for this long past the create's timeout).
    replication_seconds: Seconds = 180.0
    http_timeout_seconds: Seconds = 30.0
    workers: Annotated[int, Field(ge=1, le=16)] = 2
    metrics_host: str = "0.0.0.0"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9090  # /healthz, /readyz, /metrics; 0 turns it off
    issuer: HttpsUrl | None = None  # the service-account issuer (default: read from the API server)
    service_account: str | None = None  # NAMESPACE:NAME of the controller (default: the token file's subject)
    log_level: str = "INFO"


def load_controller_settings(flags: Mapping[str, Any], environ: Mapping[str, str]) -> ControllerSettings:
    return load_model(ControllerSettings, flags, environ, ENV_PREFIX)
