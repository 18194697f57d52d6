"""The namespaced lookup the core reads: an immutable snapshot of every blueprint and identity.

Sources build a new snapshot on each change and swap one reference, so an admission reads a
consistent view with no lock and no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from webhook.models import AgentIdentity, ConfigObject, ObjectRef


class ConfigView(Protocol):
    """What resolution needs to know about a namespace's configuration."""

    def get(self, kind: str, namespace: str, name: str) -> ConfigObject | None: ...

    def names(self, kind: str, namespace: str) -> list[str]: ...

    def bound_identities(self, namespace: str, service_account: str) -> list[AgentIdentity]: ...


@dataclass(frozen=True, slots=True)
class _Namespace:
    objects: Mapping[tuple[str, str], ConfigObject]
    bindings: Mapping[str, tuple[AgentIdentity, ...]]

    @classmethod
    def build(cls, objects: Mapping[tuple[str, str], ConfigObject]) -> _Namespace:
        bindings: dict[str, list[AgentIdentity]] = {}
        for key in sorted(objects):
            obj = objects[key]
            if isinstance(obj, AgentIdentity):
                for account in obj.spec.service_accounts:
                    bindings.setdefault(account, []).append(obj)
        return cls(objects, {account: tuple(found) for account, found in bindings.items()})


@dataclass(frozen=True, slots=True)
class ConfigIndex:
    """Blueprints and identities by namespace, kind and name, plus service-account bindings."""

    _namespaces: Mapping[str, _Namespace] = field(default_factory=dict)

    @classmethod
    def of(cls, objects: Iterable[ConfigObject]) -> ConfigIndex:
        grouped: dict[str, dict[tuple[str, str], ConfigObject]] = {}
        for obj in objects:
            grouped.setdefault(obj.ref.namespace, {})[(obj.ref.kind, obj.ref.name)] = obj
        return cls({namespace: _Namespace.build(objects) for namespace, objects in grouped.items()})

    def get(self, kind: str, namespace: str, name: str) -> ConfigObject | None:
        space = self._namespaces.get(namespace)
        return space.objects.get((kind, name)) if space else None

    def names(self, kind: str, namespace: str) -> list[str]:
        space = self._namespaces.get(namespace)
        return sorted(name for (found, name) in space.objects if found == kind) if space else []

    def bound_identities(self, namespace: str, service_account: str) -> list[AgentIdentity]:
        space = self._namespaces.get(namespace)
        return list(space.bindings.get(service_account, ())) if space else []

    def with_object(self, obj: ConfigObject) -> ConfigIndex:
        """A new snapshot with `obj` added or replaced; only its namespace is rebuilt."""
        space = self._namespaces.get(obj.ref.namespace)
        objects = dict(space.objects) if space else {}
        objects[(obj.ref.kind, obj.ref.name)] = obj
        return self._replace(obj.ref.namespace, objects)

    def without(self, ref: ObjectRef) -> ConfigIndex:
        space = self._namespaces.get(ref.namespace)
        if not space or (ref.kind, ref.name) not in space.objects:
            return self
        objects = {key: obj for key, obj in space.objects.items() if key != (ref.kind, ref.name)}
        return self._replace(ref.namespace, objects)

    def replace_kind(self, kind: str, objects: Iterable[ConfigObject]) -> ConfigIndex:
        """A new snapshot where every object of `kind` comes from `objects` (a fresh list)."""
        return ConfigIndex.of([*(obj for obj in self.objects() if obj.ref.kind != kind), *objects])

    def count(self, kind: str) -> int:
        return sum(1 for space in self._namespaces.values() for found, _ in space.objects if found == kind)

    def objects(self) -> list[ConfigObject]:
        return [obj for space in self._namespaces.values() for obj in space.objects.values()]

    def _replace(self, namespace: str, objects: dict[tuple[str, str], ConfigObject]) -> ConfigIndex:
        namespaces = dict(self._namespaces)
        if objects:
            namespaces[namespace] = _Namespace.build(objects)
        else:
            namespaces.pop(namespace, None)
        return ConfigIndex(namespaces)
