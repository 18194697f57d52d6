"""Reading the raw Pod JSON: our labels and annotations, names for messages, and the opt-in knobs.

Everything here tolerates missing keys: Pods may arrive with no annotations, no name (only
`generateName`), no env and no volumes, and a Pod template has no namespace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

PREFIX = "entra.io/"
INJECT_LABEL = PREFIX + "inject"
AGENT_IDENTITY = PREFIX + "agent-identity"
BLUEPRINT = PREFIX + "blueprint"
INJECT_CONTAINERS = PREFIX + "inject-containers"
SIDECAR_MODE = PREFIX + "sidecar-mode"
SIDECAR_PORT = PREFIX + "sidecar-port"
STATUS = PREFIX + "status"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
MIRROR = "kubernetes.io/config.mirror"

SIDECAR_NAME = "entra-sidecar"
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-node-lease", "kube-public"})

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

Json = dict[str, Any]


def mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def items(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    return value if isinstance(value, list) else []


def pod_annotations(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(mapping(pod, "metadata"), "annotations")


def pod_labels(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(mapping(pod, "metadata"), "labels")


def service_account(pod: Mapping[str, Any]) -> str:
    """The Pod's service account; Kubernetes defaults an empty one to `default`."""
    spec = mapping(pod, "spec")
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def describe(pod: Mapping[str, Any], namespace: str) -> str:
    """How messages name the Pod, which often has only a `generateName` at admission."""
    metadata = mapping(pod, "metadata")
    if metadata.get("name"):
        return f'pod "{metadata["name"]}" in namespace "{namespace}"'
    if metadata.get("generateName"):
        return f'pod "{metadata["generateName"]}*" in namespace "{namespace}"'
    return f'pod in namespace "{namespace}"'


def owner(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controller that made the Pod (a ReplicaSet, a Job), where Events about it are most seen."""
    for reference in items(mapping(pod, "metadata"), "ownerReferences"):
        if isinstance(reference, dict) and reference.get("controller") and reference.get("name"):
            return reference
    return None


@dataclass(frozen=True, slots=True)
class PodOptions:
    """The Pod's annotations, checked: each value is what the design allows."""

    identity: str | None = None
    blueprint: str | None = None
    containers: tuple[str, ...] | None = None
    mode: Literal["native", "container"] | None = None
    port: int | None = None


class BadAnnotation(ValueError):
    """A value the design does not allow; the message names the annotation, the value and the fix."""


def read_options(pod: Mapping[str, Any]) -> PodOptions:
    found = pod_annotations(pod)
    return PodOptions(
        identity=_object_name(found, AGENT_IDENTITY, "AgentIdentity"),
        blueprint=_object_name(found, BLUEPRINT, "AgentBlueprint"),
        containers=_container_list(found),
        mode=_mode(found),
        port=_port(found),
    )


def _value(found: Mapping[str, Any], key: str) -> str | None:
    value = found.get(key)
    return None if value is None else str(value).strip()


def _object_name(found: Mapping[str, Any], key: str, kind: str) -> str | None:
    value = _value(found, key)
    if value is None:
        return None
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise BadAnnotation(
            f"annotation {key}={value!r} is not a valid {kind} name: "
            "use the metadata.name of one in the pod's namespace (lowercase letters, digits, '-' and '.')"
        )
    return value


def _container_list(found: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = _value(found, INJECT_CONTAINERS)
    if value is None:
        return None
    names = tuple(part.strip() for part in value.split(","))
    bad = [name for name in names if not _DNS_LABEL.fullmatch(name)]
    if not value or bad:
        raise BadAnnotation(
            f"annotation {INJECT_CONTAINERS}={value!r} must be a comma-separated list of container names "
            f"(bad: {', '.join(repr(name) for name in bad) or 'empty'})"
        )
    return names


def _mode(found: Mapping[str, Any]) -> Literal["native", "container"] | None:
    value = _value(found, SIDECAR_MODE)
    if value is None:
        return None
    if value == "native":
        return "native"
    if value == "container":
        return "container"
    raise BadAnnotation(f"annotation {SIDECAR_MODE}={value!r} must be 'native' or 'container'")


def _port(found: Mapping[str, Any]) -> int | None:
    value = _value(found, SIDECAR_PORT)
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 1024 <= int(value) <= 65535:
        raise BadAnnotation(
            f"annotation {SIDECAR_PORT}={value!r} must be a port number from 1024 to 65535 "
            "(the sidecar runs as non-root and cannot bind lower ports)"
        )
    return int(value)
