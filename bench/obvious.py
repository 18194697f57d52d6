"""The core's baseline: the same injection done the obvious way, deepcopy + mutate + diff.

The injected structures (annotations, volumes, sidecar, app env) are taken once from the ops
`decide` produced and inserted by reference, so the baseline pays only for copying the Pod,
mutating the copy and diffing it, never for building the sidecar: that makes it a cheap,
conservative yardstick for ours, which builds everything on every call.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpatch

Json = dict[str, Any]

DESCRIPTION = (
    "copy.deepcopy(pod); insert the same annotations, volumes, sidecar container and app env "
    "(prebuilt once from our ops, inserted by reference) into the copy; jsonpatch.make_patch(pod, copy)"
)


@dataclass(frozen=True, slots=True)
class Parts:
    """What our ops add to the typical Pod, in the shape a hand-written mutation would insert it."""

    annotations: Json
    volumes: list[Json]
    sidecar: Json
    app_env: list[Json]


def parts_from_ops(ops: Sequence[Mapping[str, Any]]) -> Parts:
    """Read the structures out of our patch; fails loudly if the ops are not the shape expected."""
    annotations: Json = {}
    volumes: list[Json] = []
    sidecar: Json | None = None
    app_env: list[Json] = []
    for op in ops:
        path, value = str(op["path"]), op["value"]
        if path.startswith("/metadata/annotations/"):
            key = path.removeprefix("/metadata/annotations/").replace("~1", "/").replace("~0", "~")
            annotations[key] = value
        elif path == "/spec/volumes/-":
            volumes.append(value)
        elif path == "/spec/containers/0":
            sidecar = value
        elif path.startswith("/spec/containers/") and path.endswith("/env/-"):
            if value not in app_env:
                app_env.append(value)
        else:
            raise ValueError(f"the obvious baseline does not know how to replay op {op['op']} {path}")
    if sidecar is None:
        raise ValueError("our ops insert no sidecar at /spec/containers/0; the baseline needs one")
    return Parts(annotations, volumes, sidecar, app_env)


def inject(pod: Mapping[str, Any], parts: Parts) -> Json:
    """The injected Pod as a new object; `pod` is left as it was."""
    result: Json = copy.deepcopy(dict(pod))
    result["metadata"].setdefault("annotations", {}).update(parts.annotations)
    result["spec"].setdefault("volumes", []).extend(parts.volumes)
    for container in result["spec"]["containers"]:
        container.setdefault("env", []).extend(parts.app_env)
    result["spec"]["containers"].insert(0, parts.sidecar)
    return result


def mutate(pod: Mapping[str, Any], parts: Parts) -> list[Json]:
    """One baseline call: copy, mutate, diff; returns the patch ops like `decide` does."""
    patch = jsonpatch.make_patch(pod, inject(pod, parts))
    return list(patch.patch)
