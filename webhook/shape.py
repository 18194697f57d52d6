"""The JSON types of the Pod fields the core reads, checked once, before anything reads them.

The API server decodes a Pod into its typed form before it calls a webhook, so a Pod it sends
always has the right types; a direct POST, or a hand-written file given to `inject`, may not.
`null` counts as absent everywhere, as in the API server's decoder. Past this check the core may
take `metadata.annotations` for a map of strings, `spec.containers[i].env` for a list of objects,
and so on, and an `add` op never lands on a wrong-typed parent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from webhook.text import clip, json_type

Check = Callable[[Mapping[str, Any], str], "str | None"]

_NAMES = ("name", "generateName", "namespace")
_ACCOUNT_AND_POLICY = ("serviceAccountName", "serviceAccount", "restartPolicy")


def shape_problem(pod: Mapping[str, Any]) -> str | None:
    """The first field the core reads that has the wrong type, as "PATH must be X, got Y"; else None."""
    metadata = pod.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            return _must("metadata", "an object", metadata)
        problem = (
            _strings(metadata, _NAMES, "metadata")
            or _string_map(metadata.get("annotations"), "metadata.annotations")
            or _string_map(metadata.get("labels"), "metadata.labels")
        )
        if problem:
            return problem
    spec = pod.get("spec")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        return _must("spec", "an object", spec)
    host_network = spec.get("hostNetwork")
    if host_network is not None and not isinstance(host_network, bool):
        return _must("spec.hostNetwork", "a boolean", host_network)
    return (
        _strings(spec, _ACCOUNT_AND_POLICY, "spec")
        or _containers(spec.get("initContainers"), "spec.initContainers")
        or _containers(spec.get("containers"), "spec.containers")
        or _objects(spec.get("volumes"), "spec.volumes", _named)
    )


def _must(path: str, expected: str, value: Any) -> str:
    return f"{path} must be {expected}, got {json_type(value)}"


def _strings(parent: Mapping[str, Any], keys: tuple[str, ...], path: str) -> str | None:
    for key in keys:
        value = parent.get(key)
        if value is not None and not isinstance(value, str):
            return _must(f"{path}.{key}", "a string", value)
    return None


def _string_map(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return _must(path, "an object of strings", value)
    for key, item in value.items():
        if not isinstance(key, str):  # only from YAML, where `1:` and `yes:` are not strings
            return f"{path} has a key of another type than string: {json_type(key)} (quote it in YAML)"
        if not isinstance(item, str):
            return _must(f'{path}["{clip(key)}"]', "a string (quote it in YAML)", item)
    return None


def _objects(value: Any, path: str, check: Check) -> str | None:
    """A list of objects, each passing `check(item, path_of_item)`."""
    if value is None:
        return None
    if not isinstance(value, list):
        return _must(path, "an array", value)
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, dict):
            return _must(where, "an object", item)
        problem = check(item, where)
        if problem:
            return problem
    return None


def _named(item: Mapping[str, Any], path: str) -> str | None:
    name = item.get("name")
    return None if name is None or isinstance(name, str) else _must(f"{path}.name", "a string", name)


def _env_var(item: Mapping[str, Any], path: str) -> str | None:
    value = item.get("value")
    if value is not None and not isinstance(value, str):
        return _must(f"{path}.value", "a string", value)
    return _named(item, path)


def _port(item: Mapping[str, Any], path: str) -> str | None:
    port = item.get("containerPort")
    if port is None or (isinstance(port, int | float) and not isinstance(port, bool)):
        return None
    return _must(f"{path}.containerPort", "a number", port)


def _container(item: Mapping[str, Any], path: str) -> str | None:
    return (
        _named(item, path)
        or _objects(item.get("env"), f"{path}.env", _env_var)
        or _objects(item.get("ports"), f"{path}.ports", _port)
    )


def _containers(value: Any, path: str) -> str | None:
    return _objects(value, path, _container)
