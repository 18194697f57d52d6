"""docs/reference/reasons.md: every admission reason (webhook/core/reasons.py), each with a message the core
really gives: the example Pods below are decided here, with the configuration in examples/, on every render."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch

from scripts.reference.markdown import code, fenced, page, table
from webhook.common.models import parse_object
from webhook.core.decision import Deny, Inject, Outcome, Skip, decide
from webhook.core.index import ConfigIndex
from webhook.core.reasons import REASONS, Reason
from webhook.core.settings import Settings
from webhook.injector.admission import INTERNAL_ERROR
from webhook.injector.events import QUIET_SKIPS
from webhook.injector.sources.files import FileSource

NAMESPACE = "agents"
SERVER = (1, 36)  # a known, current API server: no fallback warnings in the examples
Json = dict[str, Any]


def pod(
    annotations: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    service_account: str = "default",
    **spec: Any,
) -> Json:
    """A Pod `web` of one container `app`, changed by what is given."""
    metadata: Json = {"name": "web", "namespace": NAMESPACE}
    if annotations:
        metadata["annotations"] = dict(annotations)
    if labels:
        metadata["labels"] = dict(labels)
    body: Json = {"serviceAccountName": service_account, "containers": [{"name": "app", "image": "agent:1"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": body | spec}


@dataclass(frozen=True)
class Example:
    pod: Json
    namespace: str = NAMESPACE
    config: tuple[Json, ...] = ()  # objects beside examples/blueprints.yaml and identities.yaml
    # Decided again once injected, with these containers added since (by another webhook): a reinvocation.
    again: tuple[Json, ...] | None = None


NAMED = {"entra.io/agent-identity": "sales-agent"}
SECOND_IDENTITY: Json = {
    "apiVersion": "entra.io/v1alpha1",
    "kind": "AgentIdentity",
    "metadata": {"name": "sales-agent-copy", "namespace": NAMESPACE},
    "spec": {
        "blueprint": "sales",
        "clientId": "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
        "serviceAccounts": ["sales-agent"],
    },
}
EMPTY_BLUEPRINT: Json = {
    "apiVersion": "entra.io/v1alpha1",
    "kind": "AgentBlueprint",
    "metadata": {"name": "draft", "namespace": NAMESPACE},
    "spec": {"logLevel": "Debug"},
}
EXAMPLES: Mapping[Reason, Example] = {
    "injected": Example(pod(NAMED)),
    "reinvoked": Example(pod(NAMED), again=({"name": "late", "image": "proxy:1"},)),
    "already-injected": Example(pod(NAMED), again=()),
    "system-namespace": Example(pod(NAMED), namespace="kube-system"),
    "mirror-pod": Example(pod({**NAMED, "kubernetes.io/config.mirror": "3f1c"})),
    "opted-out": Example(pod(NAMED, labels={"entra.io/inject": "disabled"})),
    "invalid-pod": Example(pod(NAMED, containers=[])),
    "no-identity": Example(pod()),
    "malformed-pod": Example(pod(NAMED, containers=[{"name": "app", "image": "agent:1", "env": {"A": "1"}}])),
    "bad-annotation": Example(pod({**NAMED, "entra.io/sidecar-port": "80"})),
    "unknown-identity": Example(pod({"entra.io/agent-identity": "sales-agnt"})),
    "unknown-blueprint": Example(pod({"entra.io/blueprint": "sale"})),
    "blueprint-mismatch": Example(pod({**NAMED, "entra.io/blueprint": "support"})),
    "ambiguous-identity": Example(pod(service_account="sales-agent"), config=(SECOND_IDENTITY,)),
    "invalid-config": Example(pod({"entra.io/blueprint": "draft"}), config=(EMPTY_BLUEPRINT,)),
    "identity-not-ready": Example(pod({"entra.io/agent-identity": "research-agent"})),
    "annotations-too-large": Example(pod({**NAMED, "notes": "x" * 262_100})),
    "port-conflict": Example(
        pod(NAMED, containers=[{"name": "app", "image": "agent:1", "ports": [{"containerPort": 5000}]}])
    ),
    "volume-conflict": Example(pod(NAMED, volumes=[{"name": "entra-sidecar-tmp", "emptyDir": {}}])),
}


def configuration(root: Path, extra: Iterable[Json]) -> ConfigIndex:
    """examples/'s blueprints and identities, as `inject --config` reads them, and `extra` beside them."""
    index = FileSource([root / "examples" / "blueprints.yaml", root / "examples" / "identities.yaml"], NAMESPACE).load()
    for document in extra:
        index = index.with_object(parse_object(document, NAMESPACE))
    return index


def outcome(root: Path, example: Example) -> Outcome:
    """What the core decides for the example (on the injected Pod again, for a reinvocation)."""
    config, settings = configuration(root, example.config), Settings()
    first = decide(example.pod, example.namespace, config, settings, SERVER)
    if example.again is None or not isinstance(first, Inject):
        return first
    injected = jsonpatch.apply_patch(example.pod, first.ops)
    injected["spec"]["containers"] += list(example.again)
    return decide(injected, example.namespace, config, settings, SERVER)


@dataclass(frozen=True)
class Seen:
    reason: Reason
    code: int | None
    message: str


def decided(root: Path) -> list[Seen]:
    """Every reason with what the core (or the webhook's shell, for its own fault) really answers."""
    missing = set(REASONS) - set(EXAMPLES) - {"internal-error"}
    if missing:
        raise SystemExit(f"scripts/reference/reasons.py: no example Pod for {sorted(missing)}: add one to EXAMPLES")
    seen = []
    for reason in REASONS:
        result: Outcome = INTERNAL_ERROR if reason == "internal-error" else outcome(root, EXAMPLES[reason])
        if result.reason != reason:
            raise SystemExit(f"the example for {reason} was answered {result.reason}: fix it in EXAMPLES")
        if isinstance(result, Deny):
            seen.append(Seen(reason, result.code, result.message))
        elif isinstance(result, Skip):
            seen.append(Seen(reason, None, result.message))
        else:
            seen.append(Seen(reason, None, "\n".join(result.warnings)))
    return seen


def event(reason: Reason) -> str:
    """The Event on the Pod's owner, as webhook/injector/events.py records it."""
    outcome = REASONS[reason].outcome
    if outcome == "denied":
        return "`EntraInjectionDenied` (Warning)"
    if outcome == "error":
        return "`EntraInjectionSkipped` (Warning)"
    if outcome == "skipped" and reason not in QUIET_SKIPS:
        return "`EntraInjectionSkipped` (Normal)"
    return "none"


def render(root: Path) -> str:
    seen = decided(root)
    summary = table(
        ("reason", "outcome", "code", "event"),
        (
            (f"[{code(s.reason)}](#{s.reason})", REASONS[s.reason].outcome, str(s.code or ""), event(s.reason))
            for s in seen
        ),
    )
    sections = []
    for s in seen:
        about = REASONS[s.reason]
        said = f"**{about.outcome}**" + (f", HTTP {s.code}" if s.code else "") + f"; Event: {event(s.reason)}."
        sections += [f"## {s.reason}", said, about.meaning, f"**What to do:** {about.fix}"]
        if s.message:
            sections += ["For example:", fenced(s.message)]
    return page(
        "Admission reasons",
        "webhook/core/reasons.py, with messages from the core itself",
        "Every answer the webhook gives a Pod has a reason: the `reason` label of "
        "`entra_webhook_admissions_total`, the `reason` of the admission log line, and the Event on the Pod's owner. "
        "A denial (`allowed: false`) carries the HTTP-style code and the message, which names the Pod, the "
        "namespace, what is wrong and the fix; `kubectl` prints it. A skip admits the Pod unchanged with the message "
        "as a warning. The example messages are what the webhook answers for a Pod `web` in namespace `agents` "
        "with the configuration in `examples/`. Where to look first: "
        "[why was my Pod not injected?](../troubleshooting/index.md)",
        summary,
        *sections,
    )
