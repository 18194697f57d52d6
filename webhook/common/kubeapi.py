"""A Kubernetes API client from a kubeconfig or the in-cluster service account (both commands use it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from webhook.common.errors import UsageError


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
