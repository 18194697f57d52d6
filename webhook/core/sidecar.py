"""The injected parts as Kubernetes JSON: the sidecar container, its volumes, and the app's env.

Each choice here rests on a fact about the auth sidecar (DESIGN section 2): explicit
`AzureAd__*` env that wins over `envFrom`, `SignedAssertionFileDiskPath` (the README's
`...FilePath` spelling is silently ignored), indexed scopes, the `AllowOverrides` pair without
which an agent identity is silently dropped, and probes that send `Host: localhost`.
"""

from __future__ import annotations

from typing import Any

import orjson

from webhook import __version__
from webhook.common.models import DEFAULT_INSTANCE, AgentBlueprint, AgentIdentity, WorkloadIdentityCredential
from webhook.core.placement import Mode
from webhook.core.pod import SIDECAR_NAME
from webhook.core.settings import Settings

Json = dict[str, Any]

TOKEN_VOLUME = "entra-identity-token"
TOKEN_DIR = "/var/run/secrets/entra.io/identity"
TOKEN_FILE = "token"
TMP_VOLUME = "entra-sidecar-tmp"
KEYS_VOLUME = "entra-sidecar-keys"
# An empty directory where the ServiceAccount admission plugin would mount the Pod's Kubernetes API
# token: a container with any mount at that path is one the plugin leaves alone (on 1.20 and 1.36
# alike), so the sidecar holds no API token and the plugin, re-run after our patch, changes nothing
# (no second webhook call). See docs/concepts/service-account-token.md.
NO_API_TOKEN_VOLUME = "entra-sidecar-no-api-token"
API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_NAMES = (TOKEN_VOLUME, TMP_VOLUME, KEYS_VOLUME, NO_API_TOKEN_VOLUME)

SIDECAR_URL = "SIDECAR_URL"
BLUEPRINT_APP_ID = "BLUEPRINT_APP_ID"
AGENT_IDENTITY_APP_ID = "AGENT_IDENTITY_APP_ID"
SECCOMP_PROFILE = "RuntimeDefault"


def _env(name: str, value: str) -> Json:
    return {"name": name, "value": value}


def sidecar_env(blueprint: AgentBlueprint, identity: bool, port: int) -> list[Json]:
    """`identity`: whether the Pod has an agent identity (which one is the app's business, not the sidecar's)."""
    spec = blueprint.spec
    env = [_env("ASPNETCORE_URLS", f"http://+:{port}"), _env("ASPNETCORE_ENVIRONMENT", "Production")]
    # With envFrom, only what the blueprint spells out is explicit: a default would override the ConfigMap.
    instance = spec.instance or (None if spec.env_from else DEFAULT_INSTANCE)
    if instance:
        env.append(_env("AzureAd__Instance", instance))
    if spec.tenant_id:
        env.append(_env("AzureAd__TenantId", spec.tenant_id))
    if spec.client_id:
        env.append(_env("AzureAd__ClientId", spec.client_id))
    credential = "AzureAd__ClientCredentials__0__"
    if _workload_identity(blueprint):
        env.append(_env(credential + "SourceType", "SignedAssertionFilePath"))
        env.append(_env(credential + "SignedAssertionFileDiskPath", f"{TOKEN_DIR}/{TOKEN_FILE}"))
    elif spec.credential and spec.credential.client_secret:
        secret = spec.credential.client_secret
        env.append(_env(credential + "SourceType", "ClientSecret"))
        env.append(
            {
                "name": credential + "ClientSecret",
                "valueFrom": {"secretKeyRef": {"name": secret.secret_name, "key": secret.key}},
            }
        )
    for name, api in spec.downstream_apis.items():
        prefix = f"DownstreamApis__{name}__"
        env.append(_env(prefix + "BaseUrl", api.base_url))
        env.extend(_env(f"{prefix}Scopes__{index}", scope) for index, scope in enumerate(api.scopes))
        if api.request_app_token is not None:
            env.append(_env(prefix + "RequestAppToken", "true" if api.request_app_token else "false"))
        if api.relative_path is not None:
            env.append(_env(prefix + "RelativePath", api.relative_path))
        if api.http_method is not None:
            env.append(_env(prefix + "HttpMethod", api.http_method))
    if identity:
        # Without these (default false) the sidecar drops ?AgentIdentity= and answers with a blueprint token.
        env.append(_env("Sidecar__AllowOverrides__GetAuthorizationHeaderUnauthenticated", "true"))
        env.append(_env("Sidecar__AllowOverrides__CallDownstreamApiUnauthenticated", "true"))
    if spec.log_level:
        env.append(_env("Logging__LogLevel__Default", spec.log_level))
    return env


def _probe(port: int, period: int, failures: int) -> Json:
    return {
        "httpGet": {
            "path": "/healthz",
            "port": port,
            "httpHeaders": [{"name": "Host", "value": "localhost"}],
        },
        "periodSeconds": period,
        "failureThreshold": failures,
    }


def sidecar_container(
    blueprint: AgentBlueprint,
    identity: bool,
    settings: Settings,
    port: int,
    mode: Mode,
) -> Json:
    container: Json = {
        "name": SIDECAR_NAME,
        "image": settings.sidecar_image,
        "imagePullPolicy": "IfNotPresent",
    }
    if mode == "native":
        container["restartPolicy"] = "Always"
    container["env"] = sidecar_env(blueprint, identity, port)
    if blueprint.spec.env_from:
        container["envFrom"] = [item.model_dump(by_alias=True, exclude_none=True) for item in blueprint.spec.env_from]
    container["startupProbe"] = _probe(port, period=1, failures=60)
    container["readinessProbe"] = _probe(port, period=5, failures=3)
    container["livenessProbe"] = _probe(port, period=10, failures=3)
    container["resources"] = {
        "requests": {"cpu": settings.sidecar_cpu_request, "memory": settings.sidecar_memory_request},
        "limits": {"cpu": settings.sidecar_cpu_limit, "memory": settings.sidecar_memory_limit},
    }
    container["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": settings.run_as_user,
        "runAsGroup": settings.run_as_user,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "seccompProfile": {"type": SECCOMP_PROFILE},
    }
    mounts: list[Json] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}, {"name": KEYS_VOLUME, "mountPath": "/app/keys"}]
    if _workload_identity(blueprint):
        mounts.append({"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True})
    mounts.append({"name": NO_API_TOKEN_VOLUME, "mountPath": API_TOKEN_DIR, "readOnly": True})
    container["volumeMounts"] = mounts
    return container


def sidecar_volumes(blueprint: AgentBlueprint) -> list[Json]:
    volumes: list[Json] = [
        {"name": TMP_VOLUME, "emptyDir": {}},
        {"name": KEYS_VOLUME, "emptyDir": {}},
        {"name": NO_API_TOKEN_VOLUME, "emptyDir": {}},
    ]
    federation = _workload_identity(blueprint)
    if federation:
        token = {
            "audience": federation.audience,
            "expirationSeconds": federation.expiration_seconds,
            "path": TOKEN_FILE,
        }
        volumes.append({"name": TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": token}]}})
    return volumes


def blueprint_app_env(blueprint: AgentBlueprint, port: int) -> list[Json]:
    """What an app container needs to reach the sidecar: `localhost`, never 127.0.0.1 (Host check).
    Every identity of `blueprint` shares it."""
    env = [_env(SIDECAR_URL, f"http://localhost:{port}")]
    if blueprint.spec.client_id:
        env.append(_env(BLUEPRINT_APP_ID, blueprint.spec.client_id))
    return env


def identity_app_env(identity: AgentIdentity | None) -> list[Json]:
    """The app env only the agent identity decides, after the blueprint's."""
    if identity is not None and identity.client_id:
        return [_env(AGENT_IDENTITY_APP_ID, identity.client_id)]
    return []


def _workload_identity(blueprint: AgentBlueprint) -> WorkloadIdentityCredential | None:
    credential = blueprint.spec.credential
    return credential.workload_identity if credential else None


def status_annotation(blueprint: AgentBlueprint, identity: AgentIdentity | None, mode: Mode) -> str:
    """The `entra.io/status` value: what was injected, as JSON, for people and tools to read."""
    status = {
        "blueprint": blueprint.ref.name,
        "agentIdentity": identity.ref.name if identity else None,
        "sidecar": SIDECAR_NAME,
        "mode": mode,
        "version": __version__,
    }
    return orjson.dumps(status).decode()
