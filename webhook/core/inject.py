"""JSON Patch `add` ops that turn a Pod into an injected Pod, without replacing or reordering anything.

Ops run in order: annotations, volumes, the sidecar, then app env. App env ops use the indices
after the sidecar went in, so a reader of the patch sees the final positions.

`plan` says which ops a Pod gets; the writer (`webhook.core.patch`) encodes and counts them. Those no
Pod changes (the sidecar, its volumes, the app env, the status annotation) come encoded from the render
cache (`webhook.core.rendered`); only the paths and the few values the Pod decides are encoded per admission.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from webhook.common.text import clip, listing, quoted
from webhook.core.budget import copied, over_limit, seccomp_synced
from webhook.core.encoded import array, escape, value
from webhook.core.patch import Ops, Patch
from webhook.core.placement import NATIVE_SIDECARS_SINCE, Mode
from webhook.core.pod import (
    DEFAULT_CONTAINER,
    INJECT_CONTAINERS,
    SIDECAR_PORT,
    STATUS,
    PodOptions,
    items,
    url_port,
)
from webhook.core.pod import SIDECAR_NAME as SIDECAR
from webhook.core.reasons import Reason
from webhook.core.rendered import Env, Rendered
from webhook.core.resolve import Resolved
from webhook.core.settings import Settings
from webhook.core.sidecar import SECCOMP_PROFILE, VOLUME_NAMES

Json = dict[str, Any]
_NOTHING: Mapping[str, Any] = {}  # read only
_RESERVED = frozenset(VOLUME_NAMES)
_DEFAULT_CONTAINER_PATH = f"/metadata/annotations/{escape(DEFAULT_CONTAINER)}"
# What a 1.19-1.24 API server copies to annotations from our sidecar's seccomp profile.
_SIDECAR_COPIED = copied(SIDECAR, {"securityContext": {"seccompProfile": {"type": SECCOMP_PROFILE}}})
_NAME = repeat("name")  # `map(dict.get, items, _NAME)`: each item's name at C speed (endless: one serves all)


@dataclass(frozen=True, slots=True)
class Plan:
    """The ops the Pod gets, written (`webhook.core.patch`)."""

    patch: Patch
    warnings: list[str] = field(default_factory=list)
    mode: Mode = "container"
    reinvoked: bool = False


@dataclass(frozen=True, slots=True)
class Conflict:
    """The Pod cannot take the sidecar as it is; `message` says what to change."""

    reason: Reason
    message: str


def plan(
    pod: Mapping[str, Any],
    resolved: Resolved,
    options: PodOptions,
    settings: Settings,
    server_version: tuple[int, int] | None,
    rendered: Rendered,
) -> Plan | Conflict:
    """`rendered` serves the Pod-independent parts, bound to this configuration by the caller.

    Past the shape check: `spec` is an object, its container lists arrays of objects with string
    names, its volumes an array of objects; anything else read here is read defensively.
    """
    spec = pod.get("spec") or _NOTHING
    containers = spec.get("containers") or ()
    init_containers = spec.get("initContainers") or ()
    names = list(map(dict.get, containers, _NAME))
    init_names = list(map(dict.get, init_containers, _NAME)) if init_containers else []
    if SIDECAR in init_names or SIDECAR in names:
        # Already injected: only containers added since (by other webhooks) get their env.
        native_at = init_names.index(SIDECAR) if SIDECAR in init_names else None
        mode: Mode = "native" if native_at is not None else "container"
        existing = init_containers[native_at] if native_at is not None else containers[names.index(SIDECAR)]
        port, unreadable = _sidecar_port(existing, options.port or settings.sidecar_port)
        env = rendered.parts(resolved.blueprint, resolved.identity, mode, port).env
        targets = _targets(names, init_names, options, mode, init_after=native_at or 0)
        if isinstance(targets, Conflict):
            return targets
        patch = Patch()
        _add_env(patch, spec, targets, env)
        return Plan(patch, unreadable, mode, reinvoked=True)

    warnings: list[str] = []
    mode = _mode(options, settings, server_version, warnings)
    port = options.port or settings.sidecar_port
    conflict = _port_conflict(containers, init_containers, port, options.port is not None) or _volume_conflict(spec)
    if conflict:
        return conflict
    targets = _targets(names, init_names, options, mode, init_after=-1)
    if isinstance(targets, Conflict):
        return targets
    if mode == "container" and spec.get("restartPolicy") in {"Never", "OnFailure"}:
        warnings.append(
            f"the sidecar runs as a regular container, so it keeps running after the app exits and a Job "
            f"never completes; use native sidecars (Kubernetes {'.'.join(map(str, NATIVE_SIDECARS_SINCE))}+)"
        )
    if spec.get("hostNetwork") is True:
        warnings.append(
            f"hostNetwork: the sidecar listens on the node's network on port {port}, so other processes on "
            "the node can ask it for tokens; run the agent without hostNetwork"
        )

    parts = rendered.parts(resolved.blueprint, resolved.identity, mode, port)
    first_app = next(filter(None, names), None)  # no sidecar among them: it is not there yet
    annotations = _annotations(pod, spec, parts.status, first_app, server_version)
    if isinstance(annotations, Conflict):
        return annotations
    key = "initContainers" if mode == "native" else "containers"
    patch = Patch()
    _add_annotations(patch, pod, annotations, parts.add_status)
    patch.extend(parts.volumes.append if isinstance(spec.get("volumes"), list) else parts.volumes.create)
    # First, even in an empty list: an add never replaces a list.
    patch.extend(parts.sidecar.insert if isinstance(spec.get(key), list) else parts.sidecar.create)
    _add_env(patch, spec, targets, parts.env, shifted=key)
    return Plan(patch, warnings, mode)


def _annotations(
    pod: Mapping[str, Any],
    spec: Mapping[str, Any],
    status: str,
    first_app: str | None,
    server_version: tuple[int, int] | None,
) -> dict[str, str] | Conflict:
    """Ours that the Pod has none of yet, within the annotation budget."""
    metadata = pod.get("metadata")
    present = metadata.get("annotations") if metadata is not None else None  # shape-checked: strings, or absent
    have = present if present is not None else _NOTHING
    added = {} if STATUS in have else {STATUS: status}
    if first_app is not None and DEFAULT_CONTAINER not in have:
        added[DEFAULT_CONTAINER] = first_app
    lists = (spec.get("initContainers") or (), spec.get("containers") or (), spec.get("ephemeralContainers") or ())
    synced = seccomp_synced(spec, have, server_version, *lists, ours=_SIDECAR_COPIED)
    too_large = over_limit(have, added, synced)
    if too_large:
        return Conflict("annotations-too-large", too_large)
    return added


def _add_annotations(patch: Patch, pod: Mapping[str, Any], added: dict[str, str], add_status: Ops) -> None:
    """Each into the Pod's annotations; an absent or null map is set whole (and absent metadata too)."""
    metadata = pod.get("metadata")
    if metadata is None:
        patch.add("/metadata", value({"annotations": added}))
    elif metadata.get("annotations") is None:
        patch.add("/metadata/annotations", value(added))
    else:
        if STATUS in added:
            patch.extend(add_status)  # encoded once per configuration
        if DEFAULT_CONTAINER in added:
            patch.add(_DEFAULT_CONTAINER_PATH, value(added[DEFAULT_CONTAINER]))


def _mode(options: PodOptions, settings: Settings, server_version: tuple[int, int] | None, warnings: list[str]) -> Mode:
    mode = options.mode or settings.default_mode(server_version)
    if mode == "native":
        fallback = native_fallback(server_version)
        if fallback:
            warnings.append(fallback)
            return "container"
    return mode


def native_fallback(server_version: tuple[int, int] | None) -> str | None:
    """Why a native sidecar cannot go in on this API server, or None when it can."""
    since = ".".join(map(str, NATIVE_SIDECARS_SINCE))
    if server_version is None:
        return (
            f"native sidecar requested, but the API server's version is unknown (native sidecars need {since}+; "
            "older servers refuse the Pod or never start it): injected as a regular container; declare the "
            f"version with --server-version (e.g. {since}) or give the webhook --kubeconfig to read it"
        )
    if server_version < NATIVE_SIDECARS_SINCE:
        have = ".".join(map(str, server_version))
        return (
            f"native sidecar requested, but the API server is {have} (native sidecars need {since}+; older "
            "servers drop restartPolicy and the Pod would never start): injected as a regular container"
        )
    return None


def _sidecar_port(sidecar: Mapping[str, Any], fallback: int) -> tuple[int, list[str]]:
    """The port the Pod's own sidecar listens on, for the app env of containers added since.

    When its `ASPNETCORE_URLS` names no port we can read, the app env falls back to the port this
    Pod would get now (annotation, else the operator's), with a warning: the sidecar is the Pod's
    own, so we neither deny the Pod nor guess.
    """
    for env in items(sidecar, "env"):
        if env.get("name") == "ASPNETCORE_URLS" and isinstance(env.get("value"), str):
            port = url_port(env["value"])
            if port is not None:
                return port, []
            return fallback, [
                f"{SIDECAR} has ASPNETCORE_URLS={quoted(env['value'])}, which names no port from 1 to 65535: "
                f"the app env points at port {fallback}; fix its ASPNETCORE_URLS (e.g. http://+:{fallback})"
            ]
    return fallback, []


def _port_conflict(
    containers: Sequence[Any], init_containers: Sequence[Any], port: int, annotated: bool
) -> Conflict | None:
    for container in (*init_containers, *containers):
        declared_ports = container.get("ports")
        if type(declared_ports) is not list:
            continue
        for declared in declared_ports:
            if type(declared) is dict and declared.get("containerPort") == port:
                fix = (
                    "choose a free port in that annotation"
                    if annotated
                    else f"set the {SIDECAR_PORT} annotation to a free port"
                )
                name = container.get("name") or ""
                return Conflict(
                    "port-conflict",
                    f'container "{clip(name)}" already uses port {port}, which {SIDECAR} needs: {fix}',
                )
    return None


def _volume_conflict(spec: Mapping[str, Any]) -> Conflict | None:
    volumes = spec.get("volumes") or ()
    if _RESERVED.isdisjoint(map(dict.get, volumes, _NAME)):
        return None
    for volume in volumes:
        if volume.get("name") in _RESERVED:
            return Conflict(
                "volume-conflict",
                f'volume "{volume["name"]}" already exists, but {SIDECAR} is not there: the names '
                f"{', '.join(VOLUME_NAMES)} are reserved for the injector; rename the volume",
            )
    return None


def _targets(
    names: Sequence[str | None],
    init_names: Sequence[str | None],
    options: PodOptions,
    mode: Mode,
    init_after: int,
) -> list[tuple[str, int]] | Conflict:
    """(list key, index) of the app containers that get env, indexed in the Pod as it arrived; from the
    names of the regular and the init containers."""
    if options.containers is None:
        chosen = [("containers", i) for i, name in enumerate(names) if name != SIDECAR]
        if mode == "native":
            before = [("initContainers", i) for i, name in enumerate(init_names) if name != SIDECAR and i > init_after]
            chosen = before + chosen
        return chosen
    regular, init = enumerate(names), enumerate(init_names)
    by_name = {name: ("initContainers", i) for i, name in init} | {name: ("containers", i) for i, name in regular}
    by_name.pop(SIDECAR, None)
    unknown = [name for name in options.containers if name not in by_name]
    if unknown:
        have = sorted(name for name in by_name if name)
        return Conflict(
            "bad-annotation",
            f"annotation {INJECT_CONTAINERS} names {listing(map(quoted, unknown), limit=3)}, but the pod has no "
            f"such app container (have: {listing(map(clip, have)) or 'none'})",
        )
    early = [name for name in options.containers if by_name[name][0] == "initContainers"]
    if mode == "container" and early:
        return Conflict(
            "bad-annotation",
            f"annotation {INJECT_CONTAINERS} names init container(s) {listing(map(quoted, early), limit=3)}, which "
            "run before a regular-container sidecar starts: use the native sidecar mode or drop them",
        )
    return sorted(
        {by_name[name] for name in options.containers}, key=lambda target: (target[0] != "initContainers", target[1])
    )


def _add_env(
    patch: Patch, spec: Mapping[str, Any], targets: list[tuple[str, int]], env: Env, shifted: str | None = None
) -> None:
    """The env each target lacks (by name): appended to its list, or the list set whole where it has
    none; `shifted` is the list the sidecar was put first in."""
    for key, index in targets:
        listed = spec[key][index].get("env")  # shape-checked: an array of objects, or absent
        path = f"/spec/{key}/{index + 1 if key == shifted else index}/env"
        if listed is None:
            patch.add(path, array(env.items))
            continue
        items = env.items
        if listed and not env.name_set.isdisjoint(map(dict.get, listed, _NAME)):
            present = set(map(dict.get, listed, _NAME))
            items = tuple(item for name, item in zip(env.names, env.items, strict=True) if name not in present)
        patch.append(path, items)
