"""JSON Patch `add` ops that turn a Pod into an injected Pod, without replacing or reordering anything.

Ops run in order: annotations, volumes, the sidecar, then app env. App env ops use the indices
after the sidecar went in, so a reader of the patch sees the final positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from webhook import __version__
from webhook.budget import over_limit, seccomp_synced
from webhook.pod import (
    DEFAULT_CONTAINER,
    INJECT_CONTAINERS,
    SIDECAR_PORT,
    STATUS,
    PodOptions,
    items,
    mapping,
    pod_annotations,
    url_port,
)
from webhook.pod import SIDECAR_NAME as SIDECAR
from webhook.resolve import Resolved
from webhook.settings import NATIVE_SIDECARS_SINCE, Settings
from webhook.sidecar import VOLUME_NAMES, app_env, sidecar_container, sidecar_volumes
from webhook.text import clip, listing, quoted

Json = dict[str, Any]
Mode = Literal["native", "container"]


def escape(token: str) -> str:
    """RFC 6901: `~` first, then `/`, so `entra.io/status` becomes `entra.io~1status`."""
    return token.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True, slots=True)
class Plan:
    ops: list[Json]
    warnings: list[str] = field(default_factory=list)
    mode: Mode = "container"
    reinvoked: bool = False


@dataclass(frozen=True, slots=True)
class Conflict:
    """The Pod cannot take the sidecar as it is; `message` says what to change."""

    reason: str
    message: str


def plan(
    pod: Mapping[str, Any],
    resolved: Resolved,
    options: PodOptions,
    settings: Settings,
    server_version: tuple[int, int] | None,
) -> Plan | Conflict:
    spec = mapping(pod, "spec")
    containers = items(spec, "containers")
    init_containers = items(spec, "initContainers")
    env = app_env(resolved.blueprint, resolved.identity, options.port or settings.sidecar_port)

    native_at = _index_of(init_containers, SIDECAR)
    regular_at = _index_of(containers, SIDECAR)
    if native_at is not None or regular_at is not None:
        # Already injected: only containers added since (by other webhooks) get their env.
        mode: Mode = "native" if native_at is not None else "container"
        existing = init_containers[native_at] if native_at is not None else containers[regular_at or 0]
        port, unreadable = _sidecar_port(existing, options.port or settings.sidecar_port)
        env = app_env(resolved.blueprint, resolved.identity, port)
        targets = _targets(containers, init_containers, options, mode, init_after=native_at or 0)
        if isinstance(targets, Conflict):
            return targets
        return Plan(_env_ops(spec, targets, env), unreadable, mode, reinvoked=True)

    warnings: list[str] = []
    mode = _mode(options, settings, server_version, warnings)
    port = options.port or settings.sidecar_port
    conflict = _port_conflict(containers, init_containers, port, options.port is not None) or _volume_conflict(spec)
    if conflict:
        return conflict
    targets = _targets(containers, init_containers, options, mode, init_after=-1)
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

    key = "initContainers" if mode == "native" else "containers"
    sidecar = sidecar_container(resolved.blueprint, resolved.identity, settings, port, mode)
    wanted = _our_annotations(resolved, mode, _first_app_container(containers))
    present = pod_annotations(pod)
    added = {name: value for name, value in wanted.items() if name not in present}
    everyone = [sidecar, *init_containers, *containers, *items(spec, "ephemeralContainers")]
    too_large = over_limit(present, added, seccomp_synced(spec, everyone, present, server_version))
    if too_large:
        return Conflict("annotations-too-large", too_large)
    ops = _annotation_ops(pod, wanted, added)
    ops += _append_ops(spec, "/spec/volumes", "volumes", sidecar_volumes(resolved.blueprint))
    if isinstance(spec.get(key), list):  # first, even in an empty list: an add never replaces a list
        ops.append({"op": "add", "path": f"/spec/{key}/0", "value": sidecar})
    else:
        ops.append({"op": "add", "path": f"/spec/{key}", "value": [sidecar]})
    ops += _env_ops(spec, targets, env, shifted=key)
    return Plan(ops, warnings, mode)


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


def _index_of(containers: Sequence[Any], name: str) -> int | None:
    for index, container in enumerate(containers):
        if isinstance(container, dict) and container.get("name") == name:
            return index
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
    for container in [*init_containers, *containers]:
        if not isinstance(container, dict):
            continue
        for declared in items(container, "ports"):
            if isinstance(declared, dict) and declared.get("containerPort") == port:
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
    for volume in items(spec, "volumes"):
        if isinstance(volume, dict) and volume.get("name") in VOLUME_NAMES:
            return Conflict(
                "volume-conflict",
                f'volume "{volume["name"]}" already exists, but {SIDECAR} is not there: the names '
                f"{', '.join(VOLUME_NAMES)} are reserved for the injector; rename the volume",
            )
    return None


def _targets(
    containers: Sequence[Any],
    init_containers: Sequence[Any],
    options: PodOptions,
    mode: Mode,
    init_after: int,
) -> list[tuple[str, int]] | Conflict:
    """(list key, index) of the app containers that get env, indexed in the Pod as it arrived."""
    regular = [(i, c.get("name")) for i, c in enumerate(containers) if isinstance(c, dict)]
    init = [(i, c.get("name")) for i, c in enumerate(init_containers) if isinstance(c, dict)]
    if options.containers is None:
        chosen = [("containers", i) for i, name in regular if name != SIDECAR]
        if mode == "native":
            chosen = [("initContainers", i) for i, name in init if name != SIDECAR and i > init_after] + chosen
        return chosen
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


def _first_app_container(containers: Sequence[Any]) -> str | None:
    for container in containers:
        if isinstance(container, dict) and container.get("name") and container["name"] != SIDECAR:
            return str(container["name"])
    return None


def _our_annotations(resolved: Resolved, mode: Mode, first_app: str | None) -> dict[str, str]:
    status = {
        "blueprint": resolved.blueprint.ref.name,
        "agentIdentity": resolved.identity.ref.name if resolved.identity else None,
        "sidecar": SIDECAR,
        "mode": mode,
        "version": __version__,
    }
    wanted = {STATUS: orjson.dumps(status).decode()}
    if first_app is not None:
        wanted[DEFAULT_CONTAINER] = first_app
    return wanted


def _annotation_ops(pod: Mapping[str, Any], wanted: dict[str, str], added: dict[str, str]) -> list[Json]:
    """`added` are those of `wanted` the Pod lacks; absent or null maps (nothing else passed the shape
    check) are set whole."""
    metadata = pod.get("metadata")
    if not isinstance(metadata, dict):
        return [{"op": "add", "path": "/metadata", "value": {"annotations": wanted}}]
    if not isinstance(metadata.get("annotations"), dict):
        return [{"op": "add", "path": "/metadata/annotations", "value": wanted}]
    return [
        {"op": "add", "path": f"/metadata/annotations/{escape(key)}", "value": value} for key, value in added.items()
    ]


def _append_ops(parent: Mapping[str, Any], path: str, key: str, values: list[Json]) -> list[Json]:
    """Append to a list, or create it when the key is missing or null."""
    if not isinstance(parent.get(key), list):
        return [{"op": "add", "path": path, "value": values}]
    return [{"op": "add", "path": f"{path}/-", "value": value} for value in values]


def _env_ops(
    spec: Mapping[str, Any], targets: list[tuple[str, int]], env: list[Json], shifted: str | None = None
) -> list[Json]:
    """Env only where the name is not set yet; `shifted` is the list the sidecar was put first in."""
    ops: list[Json] = []
    for key, index in targets:
        container = items(spec, key)[index]
        present = {item.get("name") for item in items(container, "env") if isinstance(item, dict)}
        missing = [item for item in env if item["name"] not in present]
        if missing:
            path = f"/spec/{key}/{index + 1 if key == shifted else index}/env"
            ops += _append_ops(container, path, "env", missing)
    return ops
