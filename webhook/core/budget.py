"""Kubernetes' 256 KiB annotation budget: what the Pod has, what we add, and what the API server adds.

apimachinery's `ValidateAnnotationsSize` refuses a Pod whose annotations (the sum of len(key) +
len(value), in UTF-8 bytes) pass `TotalAnnotationSizeLimitB` = 256 * (1 << 10). API servers 1.19
to 1.24 first copy every `seccompProfile` field into its legacy annotation (the seccomp version
skew of KEP-135), and our sidecar has one: those bytes count too. Denying before the limit names
the cause; a patch past it gets only the API server's bare "metadata.annotations: Too long".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ANNOTATIONS_LIMIT = 256 * (1 << 10)
SECCOMP_SYNCED = ((1, 19), (1, 25))  # [from, until): the API servers that copy fields to annotations
POD_SECCOMP = "seccomp.security.alpha.kubernetes.io/pod"
CONTAINER_SECCOMP = "container.seccomp.security.alpha.kubernetes.io/"


def over_limit(present: Mapping[str, str], added: Mapping[str, str], synced: int) -> str | None:
    """Why adding `added` (and `synced` bytes the API server adds) passes the limit; None when it fits.

    Characters are counted first: most Pods are far off, and then no string is encoded.
    """
    chars = sum(map(len, present)) + sum(map(len, present.values()))
    chars += sum(map(len, added)) + sum(map(len, added.values()))
    if 4 * chars + synced <= ANNOTATIONS_LIMIT:  # UTF-8 takes at most 4 bytes a character
        return None
    have, extra = _bytes(present.items()), _bytes(added.items())
    if have + extra + synced <= ANNOTATIONS_LIMIT:
        return None
    copied = f" and the API server {synced:,} more (seccomp profiles copied to annotations)" if synced else ""
    return (
        f"its annotations take {have:,} bytes, the injector adds {extra:,} ({', '.join(added)}){copied}, past "
        f"Kubernetes' limit of {ANNOTATIONS_LIMIT:,} bytes for all keys and values: shorten or drop annotations "
        "(kubectl.kubernetes.io/last-applied-configuration is often the largest: kubectl apply --server-side "
        "writes none)"
    )


def seccomp_synced(
    spec: Mapping[str, Any],
    annotations: Mapping[str, str],
    server_version: tuple[int, int] | None,
    *container_lists: Iterable[Any],
    ours: Mapping[str, int] | None = None,
) -> int:
    """Bytes of the seccomp annotations an API server of `server_version` (None: it may be one) adds
    for the Pod and the containers of `container_lists`, plus `ours` (`copied` for the containers we
    add, worked out once: key -> bytes) where the Pod does not have them already."""
    since, until = SECCOMP_SYNCED
    if server_version is not None and not since <= server_version < until:
        return 0
    security = spec.get("securityContext")
    has_profile = type(security) is dict and "seccompProfile" in security
    total = _synced(POD_SECCOMP, spec, annotations) if has_profile else 0
    for containers in container_lists:
        for container in containers:
            # Most containers have no seccomp profile: only those that do cost a key and a lookup.
            if (
                type(container) is dict
                and type(security := container.get("securityContext")) is dict
                and "seccompProfile" in security
                and type(name := container.get("name")) is str
            ):
                total += _synced(CONTAINER_SECCOMP + name, container, annotations)
    for key, size in (ours or {}).items():
        if key not in annotations:
            total += size
    return total


def copied(name: str, container: Mapping[str, Any]) -> dict[str, int]:
    """The annotation a 1.19-1.24 API server copies from container `name`'s seccomp profile, if any:
    its key and the bytes it takes."""
    key = CONTAINER_SECCOMP + name
    text = _copied_value(container)
    return {key: _utf8(key) + _utf8(text)} if text is not None else {}


def _synced(key: str, owner: Mapping[str, Any], annotations: Mapping[str, str]) -> int:
    """What the server copies from `owner.securityContext.seccompProfile` into annotation `key`."""
    if key in annotations:
        return 0
    text = _copied_value(owner)
    return 0 if text is None else _utf8(key) + _utf8(text)


def _copied_value(owner: Mapping[str, Any]) -> str | None:
    security = owner.get("securityContext")
    profile = security.get("seccompProfile") if type(security) is dict else None
    if type(profile) is not dict:
        return None
    kind, local = profile.get("type"), profile.get("localhostProfile")
    if kind == "RuntimeDefault":
        return "runtime/default"
    if kind == "Unconfined":
        return "unconfined"
    if kind == "Localhost" and type(local) is str:
        return "localhost/" + local
    return None


def _bytes(pairs: Iterable[tuple[str, str]]) -> int:
    return sum(_utf8(key) + _utf8(value) for key, value in pairs)


def _utf8(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
