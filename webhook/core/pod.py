"""Reading the raw Pod JSON: our labels and annotations, names for messages, and the opt-in knobs.

Everything here tolerates missing keys: Pods may arrive with no annotations, no name (only
`generateName`), no env and no volumes, and a Pod template has no namespace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.common.names import DNS_LABEL, is_object_name
from webhook.common.text import NAME_LIMIT, clip, listing, quoted
from webhook.core.placement import Mode

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

_URL_PORT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*:([0-9]{1,5})/?")

Json = dict[str, Any]


def mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def items(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    return value if isinstance(value, list) else []


def service_account(pod: Mapping[str, Any]) -> str:
    """The Pod's service account; Kubernetes defaults an empty one to `default`."""
    spec = mapping(pod, "spec")
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def pod_name(pod: Mapping[str, Any]) -> str:
    """The name, else `generateName*` (all a Pod has at admission when a controller made it), else ""."""
    metadata = mapping(pod, "metadata")
    name = metadata.get("name")
    if isinstance(name, str) and name:
        return clip(name, NAME_LIMIT)
    prefix = metadata.get("generateName")
    return clip(prefix, NAME_LIMIT) + "*" if isinstance(prefix, str) and prefix else ""


def describe(pod: Mapping[str, Any], namespace: str) -> str:
    """How messages name the Pod; safe and bounded whatever the Pod holds."""
    name = pod_name(pod)
    where = f'in namespace "{clip(namespace, NAME_LIMIT)}"'
    return f'pod "{name}" {where}' if name else f"pod {where}"


def owner(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controller that made the Pod (a ReplicaSet, a Job), where Events about it are most seen."""
    for reference in items(mapping(pod, "metadata"), "ownerReferences"):
        if (
            isinstance(reference, dict)
            and reference.get("controller") is True
            and isinstance(reference.get("name"), str)
            and isinstance(reference.get("kind"), str)
            and reference["name"]
        ):
            return reference
    return None


def url_port(urls: str) -> int | None:
    """The port of the first URL in an `ASPNETCORE_URLS` value (`http://+:5000;https://...`), or None.

    ASCII digits only, at most five: `str.isdigit` also accepts `²` and Arabic-Indic digits, which
    `int` then refuses, and `int` of thousands of digits is slow or refused outright.
    """
    for url in urls[:1024].split(";"):
        found = _URL_PORT.fullmatch(url.strip())
        if found and 1 <= int(found[1]) <= 65535:
            return int(found[1])
    return None


@dataclass(frozen=True, slots=True)
class PodOptions:
    """The Pod's annotations, checked: each value is what the design allows."""

    identity: str | None = None
    blueprint: str | None = None
    containers: tuple[str, ...] | None = None
    mode: Mode | None = None
    port: int | None = None


class BadAnnotation(ValueError):
    """A value the design does not allow; the message names the annotation, the value and the fix."""


_NO_OPTIONS = PodOptions()  # frozen: safe to hand to every Pod that sets none
_OPTION_KEYS = (AGENT_IDENTITY, BLUEPRINT, INJECT_CONTAINERS, SIDECAR_MODE, SIDECAR_PORT)


def options_of(found: Mapping[str, Any]) -> PodOptions:
    """The options a Pod's annotations (a map of strings: the shape check saw to it) set."""
    if found.keys().isdisjoint(_OPTION_KEYS):
        return _NO_OPTIONS
    identity, blueprint, containers, mode, port = map(found.get, _OPTION_KEYS)
    return PodOptions(
        identity=None if identity is None else _object_name(identity.strip(), AGENT_IDENTITY, "AgentIdentity"),
        blueprint=None if blueprint is None else _object_name(blueprint.strip(), BLUEPRINT, "AgentBlueprint"),
        containers=None if containers is None else _container_list(containers.strip()),
        mode=None if mode is None else _mode(mode.strip()),
        port=None if port is None else _port(port.strip()),
    )


def _object_name(value: str, key: str, kind: str) -> str:
    if not is_object_name(value):
        raise BadAnnotation(
            f"annotation {key}={quoted(value)} is not a valid {kind} name: "
            "use the metadata.name of one in the pod's namespace (lowercase letters, digits, '-' and '.')"
        )
    return value


def _container_list(value: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in value.split(","))
    bad = [name for name in names if not DNS_LABEL.fullmatch(name)]
    if not value or bad:
        raise BadAnnotation(
            f"annotation {INJECT_CONTAINERS}={quoted(value)} must be a comma-separated list of container names "
            f"(bad: {listing(map(quoted, bad), limit=3) or 'empty'})"
        )
    return names


def _mode(value: str) -> Mode:
    if value == "native":
        return "native"
    if value == "container":
        return "container"
    raise BadAnnotation(f"annotation {SIDECAR_MODE}={quoted(value)} must be 'native' or 'container'")


def _port(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 1024 <= int(value) <= 65535:
        raise BadAnnotation(
            f"annotation {SIDECAR_PORT}={quoted(value)} must be a port number from 1024 to 65535 "
            "(the sidecar runs as non-root and cannot bind lower ports)"
        )
    return int(value)
