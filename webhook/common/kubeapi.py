"""A Kubernetes API client from a kubeconfig or the in-cluster service account, and the few calls every command
makes the same way: list our resources once, make one raw call (with its warnings), describe an error."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webhook.common.errors import UsageError
from webhook.common.models import GROUP, KINDS, PLURALS, VERSION, ConfigObject, NotConfig, parse_resource
from webhook.common.text import clip


def api_client(kubeconfig: Path | None, fallback: str, context: str | None = None) -> Any | None:
    """None when there is neither a kubeconfig nor a cluster around; `fallback` says what to do then."""
    if not kubeconfig and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig:
            return config.new_client_from_config(config_file=str(kubeconfig), context=context)
        config.load_incluster_config()
    except (ConfigException, OSError, yaml.YAMLError) as error:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "the in-cluster service account"
        raise UsageError(f"cannot use {where}: {str(error).splitlines()[0]} ({fallback})") from None
    return client.ApiClient()


def _user_kubeconfig(kubeconfig: Path | None) -> Path | None:
    if kubeconfig is None:
        found = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube" / "config")
        kubeconfig = Path(found) if Path(found).exists() else None
    return kubeconfig


def user_client(kubeconfig: Path | None, context: str | None) -> Any:
    """What kubectl would use: --kubeconfig, else $KUBECONFIG or ~/.kube/config, else the in-cluster account."""
    kubeconfig = _user_kubeconfig(kubeconfig)
    api = api_client(kubeconfig, "pass --kubeconfig PATH, or set KUBECONFIG", context)
    if api is None:
        raise UsageError("no cluster to ask: pass --kubeconfig PATH, set KUBECONFIG, or run it in a cluster")
    return api


def context_namespace(kubeconfig: Path | None, context: str | None) -> str | None:
    """The namespace the kubeconfig's context names, as kubectl would default to it."""
    kubeconfig = _user_kubeconfig(kubeconfig)
    if kubeconfig is None:
        return None
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, current = config.list_kube_config_contexts(str(kubeconfig))
    except (ConfigException, OSError):
        return None
    chosen = next((c for c in contexts if c.get("name") == context), current) if context else current
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace) if namespace else None


def list_objects(api: Any, namespace: str | None = None, timeout: float = 30) -> list[ConfigObject]:
    """Every AgentBlueprint and AgentIdentity (of one namespace, or all) as the cluster has them now: one list
    each, for a command that reads the configuration once (`inject --kubeconfig`, `check`)."""
    return [parsed for _, parsed in list_raw(api, namespace, timeout)]


def list_raw(api: Any, namespace: str | None = None, timeout: float = 30) -> list[tuple[dict[str, Any], ConfigObject]]:
    """Each resource as the API has it (status and metadata too), beside its parsed form."""
    from kubernetes import client

    objects = client.CustomObjectsApi(api)
    found: list[tuple[dict[str, Any], ConfigObject]] = []
    for kind in KINDS:
        if namespace is None:
            listed = objects.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind], _request_timeout=timeout)
        else:
            listed = objects.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], _request_timeout=timeout
            )
        for raw in listed.get("items", []):
            try:
                found.append((raw, parse_resource(kind, raw)))
            except NotConfig:
                continue  # no name: the API server never stores one
    return found


@dataclass(frozen=True, slots=True)
class Answer:
    """One API answer: its status, its body (decoded JSON, or text) and its headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    warning_headers: Sequence[str] = ()

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        """The server's message of a refusal (a Status object's), or the start of its text."""
        if isinstance(self.body, dict):
            return str(self.body.get("message", ""))
        return clip(str(self.body).strip(), 300)

    def warnings(self) -> list[str]:
        """The `Warning: 299 - "text"` headers' texts (admission warnings among them)."""
        texts = []
        for header in self.warning_headers:
            _, _, rest = header.partition(" - ")
            texts.append(json.loads(rest) if rest.startswith('"') else rest)
        return texts


def call(
    api: Any,
    method: str,
    path: str,
    *,
    query: Sequence[tuple[str, str]] = (),
    body: Any = None,
    timeout: float = 10,
) -> Answer:
    """One request as raw JSON (no typed models), whatever its status; connection errors raise."""
    header_params = {"Accept": "application/json"}
    if body is not None:
        header_params["Content-Type"] = "application/json"
    serialized = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list(query),
        header_params=header_params,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized[:2], header_params=serialized[2], body=serialized[3], _request_timeout=timeout)
    raw = response.read() or b""
    text = raw.decode(errors="replace")
    try:
        decoded: Any = json.loads(text) if text else None
    except ValueError:
        decoded = text
    headers = response.headers
    warnings = headers.getlist("Warning") if hasattr(headers, "getlist") else []
    return Answer(response.status, decoded, dict(headers), tuple(warnings))


def api_errors() -> tuple[type[Exception], ...]:
    """What a Kubernetes API call raises when the cluster refuses or cannot be reached."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return ApiException, urllib3.exceptions.HTTPError, OSError


def describe_api_error(error: Exception) -> str:
    """One short line for an API error: the status and the server's message, or why nothing answered."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    if isinstance(error, ApiException):
        message = ""
        try:
            body = json.loads(error.body or "")
            message = str(body.get("message", "")) if isinstance(body, dict) else ""
        except ValueError:
            pass
        return f"{error.status} {error.reason}" + (f": {clip(message, 300)}" if message else "")
    if isinstance(error, urllib3.exceptions.MaxRetryError) and error.reason is not None:
        error = error.reason
    text = str(error)
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        text = text.rsplit(": ", 1)[-1]  # "[Errno 111] Connection refused", not the connection object's repr
    return clip(text, 300)
