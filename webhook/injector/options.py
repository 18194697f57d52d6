"""`serve`'s own flags (listening, TLS, the config source, certificates), validated once at start.

The sidecar settings every injected Pod gets are `webhook.core.settings.Settings` (flags or env vars);
these are flags only. Each description is the flag's `--help` and its row in the settings reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from webhook.common.settings import LogLevel, load_model, setting


class ServeOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cert_file: Path = setting(help="the serving certificate (PEM); re-read when the file changes")
    key_file: Path = setting(help="its private key (PEM)")
    host: str = setting("0.0.0.0", "address to listen on")
    port: int = setting(8443, "HTTPS port of /mutate, /healthz and /readyz", ge=1, le=65535)
    config: list[Path] = setting(
        [],
        "YAML file or directory of AgentBlueprints and AgentIdentities, reloaded on change, instead of the "
        "cluster (repeatable)",
    )
    kubeconfig: Path | None = setting(
        None, "read AgentBlueprints and AgentIdentities from this cluster", unset="in a cluster, its service account"
    )
    drain_seconds: float = setting(5.0, "after SIGTERM, keep serving (not ready) this long", ge=0)
    tls_reload_seconds: float = setting(5.0, "how often to look for a new certificate", gt=0)
    log_level: LogLevel = setting("INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL")
    metrics_host: str = setting("0.0.0.0", "address of the plain-HTTP Prometheus metrics")
    metrics_port: int = setting(9090, "port of the plain-HTTP Prometheus metrics; 0 turns them off", ge=0, le=65535)
    events: bool = setting(True, "record Kubernetes Events for skipped and denied Pods")
    manage_certs: bool = setting(False, "create and rotate the CA and serving certificate (needs the cluster API)")
    tls_secret: str = setting("entra-webhook-tls", "with --manage-certs: the Secret in the webhook's namespace")
    webhook_configuration: str = setting(
        "entra-webhook", "with --manage-certs: the MutatingWebhookConfiguration whose caBundle it keeps current"
    )
    service: str = setting("entra-webhook", "with --manage-certs: the Service the certificate names")
    cert_dns: list[str] = setting([], "with --manage-certs: another DNS name for the certificate (repeatable)")
    cert_ip: list[str] = setting([], "with --manage-certs: an IP address for the certificate (repeatable)")
    cert_validity_hours: float = setting(90 * 24.0, "with --manage-certs: the serving certificate's lifetime", gt=1)
    ca_validity_hours: float = setting(3650 * 24.0, "with --manage-certs: the CA's lifetime", gt=1)
    cert_sync_seconds: float = setting(300.0, "with --manage-certs: how often the Secret is checked", gt=0)


def load_serve_options(flags: Mapping[str, Any]) -> ServeOptions:
    return load_model(ServeOptions, flags, {}, None)
