"""The controller's settings: flags and `ENTRA_CONTROLLER_*` env vars, validated once at start."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from webhook.common.models import Guid
from webhook.common.settings import LogLevel, load_model, setting

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

    kubeconfig: Path | None = setting(None, "the cluster to reconcile", unset="the in-cluster service account")
    graph_url: HttpsUrl = setting(DEFAULT_GRAPH, "Microsoft Graph (sovereign clouds have their own)")
    authority_host: HttpsUrl | None = setting(
        None,
        "the Entra authority for token requests",
        unset="the blueprint's spec.instance, else login.microsoftonline.com",
    )
    ca_file: Path | None = setting(None, "CA bundle to trust for Graph and the token endpoint", unset="the system's")
    token_file: Path = setting(
        DEFAULT_TOKEN_FILE, "projected service-account token, audience api://AzureADTokenExchange"
    )
    cluster_name: Name = setting(
        "kubernetes", "goes into the marker tag on every identity it creates: one per cluster sharing a tenant"
    )
    directory_client_id: Guid | None = setting(
        None,
        "client id of an optional directory app (workload identity federation with the token file) that an admin "
        "granted AgentIdentity.Read.All or AgentIdentity.ReadWrite.All: with it the controller lists identities "
        "(to resolve a create whose answer was lost, and to find what a deleted resource left behind) and, with "
        "ReadWrite.All, syncs sponsors (docs/security/entra-permissions.md)",
        unset="none: only what the blueprint itself may do",
    )
    namespace: Name | None = setting(None, "reconcile only this namespace", unset="all namespaces")
    lease_name: Name = setting("entra-webhook-controller", "the Lease its replicas elect a leader with")
    lease_namespace: Name = setting("entra-system", "the Lease's namespace")
    lease_seconds: Seconds = setting(15.0, "how long a Lease not renewed stays the leader's")
    renew_seconds: Seconds = setting(5.0, "how often the leader renews the Lease")
    resync_seconds: Seconds = setting(600.0, "how often each identity is checked against Entra")
    backoff_seconds: Seconds = setting(1.0, "first retry of a failed reconcile; doubles, with jitter")
    backoff_max_seconds: Seconds = setting(300.0, "longest wait between retries of a failed reconcile")
    retry_after_max_seconds: Seconds = setting(60.0, "longest Retry-After honoured inside one call")
    # How long Graph may take to show a fresh identity: reads that 404 after a create, and lists that
    # do not show a create whose answer was lost (waited for this long past the create's timeout).
    replication_seconds: Seconds = setting(
        180.0, "how long Graph may take to show a fresh identity (reads that 404 after a create, lists missing it)"
    )
    http_timeout_seconds: Seconds = setting(30.0, "timeout of one Graph or token request")
    workers: int = setting(2, "reconciles run at once, 1..16", ge=1, le=16)
    metrics_host: str = setting("0.0.0.0", "address of /healthz, /readyz and /metrics")
    metrics_port: int = setting(9090, "port of /healthz, /readyz and /metrics; 0 turns them off", ge=0, le=65535)
    issuer: HttpsUrl | None = setting(
        None,
        "the cluster's service-account issuer",
        unset="read from the API server's /.well-known/openid-configuration",
    )
    service_account: str | None = setting(
        None, "NAMESPACE:NAME of the controller's service account", unset="the token file's subject"
    )
    install_binding: Name | None = setting(
        None,
        "the name of its own ClusterRole and ClusterRoleBinding: the leader holds a finalizer on them and on its "
        "service account, and when one is deleted (the install or the CRDs being removed) releases its finalizer "
        "on every AgentIdentity, leaving each in Entra (docs/operations/uninstall.md)",
        unset="none: an uninstall is not watched for",
    )
    log_level: LogLevel = setting("INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL")


def load_controller_settings(flags: Mapping[str, Any], environ: Mapping[str, str]) -> ControllerSettings:
    return load_model(ControllerSettings, flags, environ, ENV_PREFIX)
