"""Where each kind of workload keeps its Pod template, so the offline `inject` finds every Pod."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.common.text import NAME_LIMIT, clip

# kind -> (API groups that serve it, path from the object to its Pod template)
TEMPLATES: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "Pod": (frozenset({""}), ()),
    "ReplicationController": (frozenset({""}), ("spec", "template")),
    "Deployment": (frozenset({"apps", "extensions"}), ("spec", "template")),
    "StatefulSet": (frozenset({"apps"}), ("spec", "template")),
    "DaemonSet": (frozenset({"apps", "extensions"}), ("spec", "template")),
    "ReplicaSet": (frozenset({"apps", "extensions"}), ("spec", "template")),
    "Job": (frozenset({"batch"}), ("spec", "template")),
    "CronJob": (frozenset({"batch"}), ("spec", "jobTemplate", "spec", "template")),
}


@dataclass(frozen=True, slots=True)
class Template:
    """A Pod (or Pod template) inside a document: `path` leads from the document to it."""

    path: tuple[str | int, ...]
    pod: Mapping[str, Any]
    kind: str
    name: str
    namespace: str | None

    @property
    def subject(self) -> str:
        return f'{self.kind} "{self.name}"'


def _group_of(api_version: Any) -> str:
    text = str(api_version or "")
    return text.rpartition("/")[0] if "/" in text else ""


def is_list(document: Any) -> bool:
    """A `v1/List` (what `kubectl get -o yaml` prints for more than one object) or a typed list like `PodList`."""
    if not isinstance(document, dict):
        return False
    kind = document.get("kind")
    return (
        _group_of(document.get("apiVersion")) == ""
        and isinstance(kind, str)
        and kind.endswith("List")
        and isinstance(document.get("items"), list)
    )


def flatten(documents: Iterable[Any]) -> Iterator[Any]:
    """Every object among `documents`, the items of lists in their place (lists in lists too)."""
    for document in documents:
        if is_list(document):
            yield from flatten(document["items"])
        else:
            yield document


def find_templates(document: Any, path: tuple[str | int, ...] = ()) -> Iterator[Template]:
    """Every Pod template in a document, descending into `v1/List` items."""
    if not isinstance(document, dict):
        return
    if is_list(document):
        for index, item in enumerate(document["items"]):
            yield from find_templates(item, (*path, "items", index))
        return
    kind = document.get("kind")
    group = _group_of(document.get("apiVersion"))
    if not isinstance(kind, str) or kind not in TEMPLATES or group not in TEMPLATES[kind][0]:
        return
    node: Any = document
    for key in TEMPLATES[kind][1]:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    name = _text(metadata.get("name")) or _text(metadata.get("generateName")) or ""
    namespace = _text(metadata.get("namespace"))
    yield Template((*path, *TEMPLATES[kind][1]), node, kind, clip(name, NAME_LIMIT), namespace)


def _text(value: Any) -> str | None:
    """A non-empty string field, as it is; anything else (a typo'd YAML type) reads as absent."""
    return value if isinstance(value, str) and value else None
