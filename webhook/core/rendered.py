"""The injected parts no Pod changes, rendered and encoded once per configuration, not per Pod.

The sidecar container depends on the blueprint, whether there is an agent identity (the
`AllowOverrides` pair), the mode, the port and the operator's settings; its volumes on the
blueprint; the app env and the status annotation also on the identity. None of it depends on the
Pod, so a patch is joined from these bytes and the few ops only the Pod decides. One lookup per
admission: `parts(blueprint, identity, mode, port)`; the big parts (the sidecar, the volumes) are
rendered once per blueprint and shared, by reference, by every identity of it.

The one invalidation rule: entries hold for one (configuration snapshot, settings, server version),
each compared by identity (all three are immutable); a request under any other empties the cache
first. Entries are keyed by the blueprint and identity objects themselves (kept alive by the entry,
and checked by identity on a hit), so even a configuration view changed in place could not serve a
stale part. Bounded: past `limit` entries per table the oldest goes. Values are bytes and frozen
objects, so no request can change what another reads. One cache per thread (the server's event
loop): it is plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from webhook.common.models import AgentBlueprint, AgentIdentity
from webhook.core.encoded import array, escape, kept, value
from webhook.core.patch import Ops, Patch
from webhook.core.placement import Mode
from webhook.core.pod import STATUS
from webhook.core.settings import Settings
from webhook.core.sidecar import (
    blueprint_app_env,
    identity_app_env,
    sidecar_container,
    sidecar_volumes,
    status_annotation,
)

# Entries per table: sidecars for 1,000 blueprints x 2 (with an identity or not) x the modes and ports
# in use; parts for every identity in use (10,000 fit in a few MiB: the big parts are shared).
LIMIT = 16_384


@dataclass(frozen=True, slots=True)
class Env:
    """The app env, each item encoded as JSON, with its names."""

    names: tuple[str, ...]
    items: tuple[bytes, ...]
    name_set: frozenset[str]


@dataclass(frozen=True, slots=True)
class Sidecar:
    """The sidecar container's op for one list (`initContainers` or `containers`): first in the list
    the Pod has, or the list itself where it has none (an add never replaces a list)."""

    insert: Ops
    create: Ops


@dataclass(frozen=True, slots=True)
class Volumes:
    """The volumes' ops: appended to the Pod's list, or the list set whole."""

    append: Ops
    create: Ops


@dataclass(frozen=True, slots=True)
class Parts:
    sidecar: Sidecar
    volumes: Volumes
    env: Env
    status: str  # the `entra.io/status` annotation's value
    add_status: Ops  # the op adding it to a Pod's annotations


class Rendered:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._for: tuple[object, Settings, tuple[int, int] | None] | None = None
        self._parts: dict[tuple[int, int, Mode, int], tuple[AgentBlueprint, AgentIdentity | None, Parts]] = {}
        self._sidecars: dict[tuple[int, bool, Mode, int], tuple[AgentBlueprint, Sidecar]] = {}
        self._volumes: dict[int, tuple[AgentBlueprint, Volumes]] = {}

    def bind(self, config: object, settings: Settings, server_version: tuple[int, int] | None) -> None:
        """Serve parts for this configuration; anything rendered for another is dropped."""
        bound = self._for
        if bound is None or bound[0] is not config or bound[1] is not settings or bound[2] != server_version:
            self.clear()
            self._for = (config, settings, server_version)

    def clear(self) -> None:
        self._parts.clear()
        self._sidecars.clear()
        self._volumes.clear()

    def __len__(self) -> int:
        return len(self._parts) + len(self._sidecars) + len(self._volumes)

    @property
    def settings(self) -> Settings:
        if self._for is None:
            raise RuntimeError("Rendered.bind must come before asking for parts")
        return self._for[1]

    def parts(self, blueprint: AgentBlueprint, identity: AgentIdentity | None, mode: Mode, port: int) -> Parts:
        key = (id(blueprint), id(identity), mode, port)
        found = self._parts.get(key)
        if found is not None and found[0] is blueprint and found[1] is identity:
            return found[2]
        status = status_annotation(blueprint, identity, mode)
        parts = Parts(
            self._sidecar(blueprint, identity is not None, mode, port),
            self._volumes_of(blueprint),
            _env(blueprint_app_env(blueprint, port) + identity_app_env(identity)),
            status,
            Patch().add(f"/metadata/annotations/{escape(STATUS)}", value(status)).ops().kept(),
        )
        _put(self._parts, key, (blueprint, identity, parts), self.limit)
        return parts

    def _sidecar(self, blueprint: AgentBlueprint, identity: bool, mode: Mode, port: int) -> Sidecar:
        """It renders whether there is an agent identity, not which: shared by all of the blueprint's."""
        key = (id(blueprint), identity, mode, port)
        found = self._sidecars.get(key)
        if found is not None and found[0] is blueprint:
            return found[1]
        container = value(sidecar_container(blueprint, identity, self.settings, port, mode))
        where = "/spec/initContainers" if mode == "native" else "/spec/containers"
        sidecar = Sidecar(
            Patch().add(f"{where}/0", container).ops().kept(), Patch().add(where, array([container])).ops().kept()
        )
        _put(self._sidecars, key, (blueprint, sidecar), self.limit)
        return sidecar

    def _volumes_of(self, blueprint: AgentBlueprint) -> Volumes:
        key = id(blueprint)
        found = self._volumes.get(key)
        if found is not None and found[0] is blueprint:
            return found[1]
        items = [value(volume) for volume in sidecar_volumes(blueprint)]
        volumes = Volumes(
            Patch().append("/spec/volumes", items).ops().kept(), Patch().add("/spec/volumes", array(items)).ops().kept()
        )
        _put(self._volumes, key, (blueprint, volumes), self.limit)
        return volumes


def _env(env: list[dict[str, object]]) -> Env:
    names = tuple(str(item["name"]) for item in env)
    return Env(names, tuple(kept(value(item)) for item in env), frozenset(names))


K = TypeVar("K")
V = TypeVar("V")


def _put(table: dict[K, V], key: K, entry: V, limit: int) -> None:
    if len(table) >= limit:
        del table[next(iter(table))]  # the oldest: dicts keep insertion order
    table[key] = entry
