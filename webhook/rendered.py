"""The injected parts no Pod changes, rendered and encoded once per configuration, not per Pod.

The sidecar container depends on the blueprint, whether there is an agent identity (the
`AllowOverrides` pair), the mode, the port and the operator's settings; its volumes on the
blueprint; the app env on the blueprint and port, plus one item per identity. None of it depends
on the Pod, so a patch is joined from these bytes and the few ops only the Pod decides.

The one invalidation rule: entries hold for one (configuration snapshot, settings, server version),
each compared by identity (all three are immutable); a request under any other empties the cache
first. Entries are keyed by the blueprint object itself (kept alive by the entry, and checked by
identity on a hit), so even a configuration view that changed in place could not serve a stale
part. Bounded: past `limit` entries the oldest goes. Values are bytes, so no request can change
what another reads. One cache per thread (the server's event loop): it is plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

from webhook.encoded import add, appended, array, value
from webhook.models import AgentBlueprint, AgentIdentity
from webhook.settings import Settings
from webhook.sidecar import (
    blueprint_app_env,
    identity_app_env,
    sidecar_container,
    sidecar_volumes,
    status_annotation,
)

Mode = Literal["native", "container"]
EnvItems = tuple[tuple[str, bytes, bytes], ...]  # (name, the item as JSON, its `appended` op tail), in order
# Entries per table. Sidecars: 1,000 blueprints x 2 (with an identity or not) x the modes and ports in
# use; app env and status: one per identity in use (10,000 fit), a few hundred bytes each.
LIMIT = 16_384


@dataclass(frozen=True, slots=True)
class Volumes:
    """The ops that add the sidecar's volumes, encoded: one per volume for a Pod with a list, or one
    that sets the list where the Pod has none."""

    append_ops: tuple[bytes, ...]
    create_op: bytes


class Rendered:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._for: tuple[object, Settings, tuple[int, int] | None] | None = None
        self._sidecars: dict[tuple[int, bool, Mode, int], tuple[AgentBlueprint, bytes]] = {}
        self._volumes: dict[int, tuple[AgentBlueprint, Volumes]] = {}
        self._env: dict[tuple[int, int, int], tuple[AgentBlueprint, AgentIdentity | None, EnvItems]] = {}
        self._status: dict[tuple[int, int, Mode], tuple[AgentBlueprint, AgentIdentity | None, str]] = {}

    def bind(self, config: object, settings: Settings, server_version: tuple[int, int] | None) -> None:
        """Serve parts for this configuration; anything rendered for another is dropped."""
        bound = self._for
        if bound is None or bound[0] is not config or bound[1] is not settings or bound[2] != server_version:
            self.clear()
            self._for = (config, settings, server_version)

    def clear(self) -> None:
        for table in (self._sidecars, self._volumes, self._env, self._status):
            table.clear()

    def __len__(self) -> int:
        return len(self._sidecars) + len(self._volumes) + len(self._env) + len(self._status)

    @property
    def settings(self) -> Settings:
        if self._for is None:
            raise RuntimeError("Rendered.bind must come before asking for parts")
        return self._for[1]

    def sidecar(self, blueprint: AgentBlueprint, identity: bool, mode: Mode, port: int) -> bytes:
        """The sidecar container as JSON: it renders whether there is an agent identity, not which."""
        key = (id(blueprint), identity, mode, port)
        found = self._sidecars.get(key)
        if found is not None and found[0] is blueprint:
            return found[1]
        encoded = value(sidecar_container(blueprint, identity, self.settings, port, mode))
        _put(self._sidecars, key, (blueprint, encoded), self.limit)
        return encoded

    def volumes(self, blueprint: AgentBlueprint) -> Volumes:
        key = id(blueprint)
        found = self._volumes.get(key)
        if found is not None and found[0] is blueprint:
            return found[1]
        items = [value(volume) for volume in sidecar_volumes(blueprint)]
        volumes = Volumes(tuple(add("/spec/volumes/-", item) for item in items), add("/spec/volumes", array(items)))
        _put(self._volumes, key, (blueprint, volumes), self.limit)
        return volumes

    def app_env(self, blueprint: AgentBlueprint, identity: AgentIdentity | None, port: int) -> EnvItems:
        key = (id(blueprint), id(identity), port)
        found = self._env.get(key)
        if found is not None and found[0] is blueprint and found[1] is identity:
            return found[2]
        env = blueprint_app_env(blueprint, port) + identity_app_env(identity)
        encoded = [(str(item["name"]), value(item)) for item in env]
        items = tuple((name, item, appended(item)) for name, item in encoded)
        _put(self._env, key, (blueprint, identity, items), self.limit)
        return items

    def status(self, blueprint: AgentBlueprint, identity: AgentIdentity | None, mode: Mode) -> str:
        """The `entra.io/status` annotation's value."""
        key = (id(blueprint), id(identity), mode)
        found = self._status.get(key)
        if found is not None and found[0] is blueprint and found[1] is identity:
            return found[2]
        text = status_annotation(blueprint, identity, mode)
        _put(self._status, key, (blueprint, identity, text), self.limit)
        return text


K = TypeVar("K")
V = TypeVar("V")


def _put(table: dict[K, V], key: K, entry: V, limit: int) -> None:
    if len(table) >= limit:
        del table[next(iter(table))]  # the oldest: dicts keep insertion order
    table[key] = entry
