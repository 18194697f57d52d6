"""The large configuration: 10,000 AgentIdentities across 1,000 namespaces with 1,000 blueprints.

Generated at bench time into a temporary directory (never committed): one file per namespace with
its blueprint and ten identities, each bound to its own service account, as a platform team with
many agent teams would have it. The examples' namespace `agents` comes along (the typical Pod
names `sales-agent` there), so the large server answers the typical Pod exactly as the small one.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

from bench.pod import EXAMPLES
from webhook.core.index import ConfigIndex
from webhook.injector.sources.files import FileSource

NAMESPACES = 1_000
IDENTITIES_PER_NAMESPACE = 10
_TENANT = "7a1c2f0e-4b5d-4c3e-9f00-123456789abc"


def _guid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


def _namespace_file(number: int) -> str:
    namespace = f"team-{number:04d}"
    documents = [
        f"""apiVersion: entra.io/v1alpha1
kind: AgentBlueprint
metadata: {{name: blueprint-{number:04d}, namespace: {namespace}}}
spec:
  tenantId: {_TENANT}
  clientId: {_guid("blueprint", number)}
  credential: {{workloadIdentity: {{}}}}
  downstreamApis:
    graph: {{baseUrl: "https://graph.microsoft.com/v1.0/", scopes: ["https://graph.microsoft.com/.default"]}}
"""
    ]
    for agent in range(IDENTITIES_PER_NAMESPACE):
        documents.append(
            f"""apiVersion: entra.io/v1alpha1
kind: AgentIdentity
metadata: {{name: agent-{agent}, namespace: {namespace}}}
spec:
  blueprint: blueprint-{number:04d}
  clientId: {_guid("identity", number, agent)}
  serviceAccounts: [agent-{agent}]
"""
        )
    return "---\n".join(documents)


def write_config(directory: Path, namespaces: int = NAMESPACES) -> Path:
    """The configuration directory: `namespaces` files plus the examples' blueprints and identities."""
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(namespaces):
        (directory / f"team-{number:04d}.yaml").write_text(_namespace_file(number), encoding="utf-8")
    for name in ("blueprints.yaml", "identities.yaml"):
        (directory / f"examples-{name}").write_text((EXAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    return directory


def load(directory: Path) -> tuple[ConfigIndex, float]:
    """The snapshot and the seconds the first load took (what `serve` does before it is ready)."""
    started = time.perf_counter()
    index = FileSource([directory]).load()
    return index, time.perf_counter() - started


def check(index: ConfigIndex, namespaces: int = NAMESPACES) -> None:
    """The generated configuration is what this bench claims it is, and all of it is valid."""
    identities, blueprints = index.count("AgentIdentity"), index.count("AgentBlueprint")
    want_identities = namespaces * IDENTITIES_PER_NAMESPACE
    if identities < want_identities or blueprints < namespaces:
        raise RuntimeError(f"large config holds {identities} identities and {blueprints} blueprints")
    invalid = [obj.ref for obj in index.objects() if not hasattr(obj, "spec")]
    if invalid:
        raise RuntimeError(f"large config has invalid objects, e.g. {invalid[0]}")


def pods(typical: dict[str, Any], namespaces: int = NAMESPACES) -> list[tuple[str, dict[str, Any]]]:
    """(namespace, Pod) naming each generated identity: the typical Pod's spec, shared (decide never
    changes its input), under metadata of its own."""
    found = []
    for number in range(namespaces):
        for agent in range(IDENTITIES_PER_NAMESPACE):
            metadata = {**typical["metadata"], "annotations": {"entra.io/agent-identity": f"agent-{agent}"}}
            found.append((f"team-{number:04d}", {**typical, "metadata": metadata}))
    return found


def reviews(typical: dict[str, Any], namespaces: int = NAMESPACES) -> list[bytes]:
    """The typical AdmissionReview once for each generated identity (compact JSON, as wrk posts it)."""
    bodies = []
    for number in range(namespaces):
        namespace = f"team-{number:04d}"
        for agent in range(IDENTITIES_PER_NAMESPACE):
            review = copy.deepcopy(typical)
            review["request"]["namespace"] = review["request"]["object"]["metadata"]["namespace"] = namespace
            review["request"]["object"]["metadata"]["annotations"]["entra.io/agent-identity"] = f"agent-{agent}"
            bodies.append(json.dumps(review, separators=(",", ":")).encode())
    return bodies
