"""The JSON types of the Pod fields the core reads, checked once, before anything reads them.

The API server decodes a Pod into its typed form before it calls a webhook, so a Pod it sends
always has the right types; a direct POST, or a hand-written file given to `inject`, may not.
`null` counts as absent everywhere, as in the API server's decoder. Past this check the core may
take `metadata.annotations` for a map of strings, `spec.containers[i].env` for a list of objects,
and so on, and an `add` op never lands on a wrong-typed parent.

It runs on every admission: one flat walk of plain loops and exact `type()` tests, and the path
of a wrong field is only spelled out when there is one. What the core only compares (a container
port, an env value) it reads defensively instead, and needs no check here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.common.text import clip, json_type


def _must(path: str, expected: str, value: Any) -> str:
    return f"{path} must be {expected}, got {json_type(value)}"


def shape_problem(pod: Mapping[str, Any]) -> str | None:
    """The first field the core reads that has the wrong type, as "PATH must be X, got Y"; else None."""
    metadata = pod.get("metadata")
    if metadata is not None:
        if type(metadata) is not dict:
            return _must("metadata", "an object", metadata)
        for key in ("name", "generateName", "namespace"):
            if (value := metadata.get(key)) is not None and type(value) is not str:
                return _must(f"metadata.{key}", "a string", value)
        for key in ("annotations", "labels"):
            if (found := metadata.get(key)) is not None and (problem := _string_map(found, key)):
                return problem
    spec = pod.get("spec")
    if spec is None:
        return None
    if type(spec) is not dict:
        return _must("spec", "an object", spec)
    for key in ("serviceAccountName", "serviceAccount", "restartPolicy"):
        if (value := spec.get(key)) is not None and type(value) is not str:
            return _must(f"spec.{key}", "a string", value)
    host_network = spec.get("hostNetwork")
    if host_network is not None and type(host_network) is not bool:
        return _must("spec.hostNetwork", "a boolean", host_network)
    for key in ("initContainers", "containers"):
        if (found := spec.get(key)) is not None and (problem := _containers(found, key)):
            return problem
    volumes = spec.get("volumes")
    if volumes is not None:
        if type(volumes) is not list:
            return _must("spec.volumes", "an array", volumes)
        for index, volume in enumerate(volumes):
            if type(volume) is not dict:
                return _must(f"spec.volumes[{index}]", "an object", volume)
            if (name := volume.get("name")) is not None and type(name) is not str:
                return _must(f"spec.volumes[{index}].name", "a string", name)
    return None


def _containers(containers: Any, key: str) -> str | None:
    if type(containers) is not list:
        return _must(f"spec.{key}", "an array", containers)
    for index, container in enumerate(containers):
        if type(container) is not dict:
            return _must(f"spec.{key}[{index}]", "an object", container)
        if (name := container.get("name")) is not None and type(name) is not str:
            return _must(f"spec.{key}[{index}].name", "a string", name)
        env = container.get("env")
        if env is not None:
            if type(env) is not list:
                return _must(f"spec.{key}[{index}].env", "an array", env)
            for number, item in enumerate(env):
                if type(item) is not dict:
                    return _must(f"spec.{key}[{index}].env[{number}]", "an object", item)
                if (name := item.get("name")) is not None and type(name) is not str:
                    return _must(f"spec.{key}[{index}].env[{number}].name", "a string", name)
    return None


def _string_map(value: Any, field: str) -> str | None:
    if type(value) is not dict:
        return _must(f"metadata.{field}", "an object of strings", value)
    for key, item in value.items():
        if type(key) is not str:  # only from YAML, where `1:` and `yes:` are not strings
            return f"metadata.{field} has a key of another type than string: {json_type(key)} (quote it in YAML)"
        if type(item) is not str:
            return _must(f'metadata.{field}["{clip(key)}"]', "a string (quote it in YAML)", item)
    return None
