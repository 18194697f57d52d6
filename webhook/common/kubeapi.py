"""A Kubernetes API client from a kubeconfig or the in-cluster service account (both commands use it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from webhook.common.errors import UsageError
from webhook.common.text import clip


def api_client(kubeconfig: Path | None, fallback: str) -> Any | None:
    """None when there is neither a kubeconfig nor a cluster around; `fallback` says what to do then."""
    if not kubeconfig and not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if kubeconfig:
            return config.new_client_from_config(config_file=str(kubeconfig))
        config.load_incluster_config()
    except (ConfigException, OSError, yaml.YAMLError) as error:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "the in-cluster service account"
        raise UsageError(f"cannot use {where}: {str(error).splitlines()[0]} ({fallback})") from None
    return client.ApiClient()


def api_errors() -> tuple[type[Exception], ...]:
    """What a Kubernetes API call raises when the cluster refuses or cannot be reached."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    return ApiException, urllib3.exceptions.HTTPError, OSError


def describe_api_error(error: Exception) -> str:
    """One short line for an API error: the status and the server's message, or why nothing answered."""
    import json

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
