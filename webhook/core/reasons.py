"""Every reason an admission can be given, and what each tells the user to do.

The reason is the `reason` label of `entra_webhook_admissions_total`, the `reason` of the admission log line, and
what the Events on the Pod's owner say. `Reason` makes mypy refuse any other string where a decision names one;
`REASONS` says what each means, and is what the reference page (docs/reference/reasons.md, written by
`make docs`) is made from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Reason = Literal[
    "injected",
    "reinvoked",
    "already-injected",
    "system-namespace",
    "mirror-pod",
    "opted-out",
    "invalid-pod",
    "no-identity",
    "internal-error",
    "malformed-pod",
    "bad-annotation",
    "unknown-identity",
    "unknown-blueprint",
    "blueprint-mismatch",
    "ambiguous-identity",
    "invalid-config",
    "identity-not-ready",
    "annotations-too-large",
    "port-conflict",
    "volume-conflict",
]

Outcome = Literal["injected", "skipped", "denied", "error"]


@dataclass(frozen=True, slots=True)
class About:
    outcome: Outcome  # the metric's `outcome` label
    meaning: str
    fix: str


REASONS: Mapping[Reason, About] = {
    "injected": About(
        "injected",
        "The sidecar, its volumes and the app containers' env were added; the `entra.io/status` annotation "
        "names the blueprint, the agent identity, the mode and the webhook's version.",
        "Nothing.",
    ),
    "reinvoked": About(
        "injected",
        "The Pod already had the sidecar: the API server called the webhook again (`reinvocationPolicy: "
        "IfNeeded`) after another webhook changed the Pod, and the containers added since got their env.",
        "Nothing.",
    ),
    "already-injected": About(
        "skipped",
        "A reinvocation with nothing to add: the Pod has the sidecar and every app container has its env. "
        "No warning and no Event: it is not news.",
        "Nothing.",
    ),
    "system-namespace": About(
        "skipped",
        "The Pod is in `kube-system`, `kube-node-lease`, `kube-public` or the webhook's own namespace "
        "(`--own-namespace`, `entra-system` by default), which are never injected.",
        "Run the agent in a namespace of its own.",
    ),
    "mirror-pod": About(
        "skipped",
        "A static Pod's mirror (annotation `kubernetes.io/config.mirror`): the kubelet runs static Pods from its "
        "own manifest files, so nothing added to the API server's copy would run.",
        "Add the sidecar to the static Pod's manifest yourself, or run the agent as a regular Pod.",
    ),
    "opted-out": About(
        "skipped",
        "The Pod is labelled `entra.io/inject=disabled`. The webhook configuration's selectors normally keep such "
        "a Pod from being sent at all; this answers one sent anyway (a configuration edited by hand).",
        "Remove the label if the Pod should get the sidecar.",
    ),
    "invalid-pod": About(
        "skipped",
        "The Pod has no `spec.containers`; the API server's validation refuses it next, with its own message. "
        "No Event, since that error says it all.",
        "Give the Pod its containers.",
    ),
    "no-identity": About(
        "skipped",
        "The Pod was sent to the webhook (its namespace or the Pod is labelled `entra.io/inject=enabled`) but "
        "names no agent identity or blueprint, and no AgentIdentity lists its service account. It is admitted "
        "unchanged, with a warning to whoever created it.",
        "Add the `entra.io/agent-identity` annotation (or `entra.io/blueprint`), or list the Pod's service account "
        "in one AgentIdentity's `spec.serviceAccounts`.",
    ),
    "internal-error": About(
        "error",
        "A fault in the webhook: the Pod is admitted unchanged (the webhook never blocks a Pod because of its own "
        "bug), with a warning, an error log line with the traceback, a Warning Event and the "
        "`EntraWebhookAdmissionErrors` alert. The Pod runs without its sidecar.",
        "Read the webhook's log lines with outcome `error`, report the traceback, and re-create the Pods they "
        "name once it is fixed.",
    ),
    "malformed-pod": About(
        "denied",
        "A field the webhook reads has the wrong JSON type (for example `spec.containers[0].env` an object): only "
        "a direct POST or a hand-written file can carry one, and Kubernetes refuses it too.",
        "Correct the field the message names.",
    ),
    "bad-annotation": About(
        "denied",
        "An `entra.io/` annotation has a value the design does not allow: a name that is not an object name, "
        "`sidecar-mode` other than `native` or `container`, `sidecar-port` outside 1024..65535 or not ASCII "
        "digits, `inject-containers` naming a container the Pod lacks, or naming init containers in "
        "`container` mode (they run before a regular-container sidecar starts).",
        "Correct the annotation as the message says.",
    ),
    "unknown-identity": About(
        "denied",
        "`entra.io/agent-identity` names an AgentIdentity that the Pod's namespace does not have (the message "
        "lists the ones it has). The webhook looks it up once more in the API server before it denies, so an "
        "identity applied together with the Pod is found.",
        "Fix the name, or create the AgentIdentity in the Pod's namespace.",
    ),
    "unknown-blueprint": About(
        "denied",
        "The blueprint named by `entra.io/blueprint`, or by the agent identity's `spec.blueprint`, does not exist "
        "in the Pod's namespace (the message lists the ones that do); looked up once more before the denial.",
        "Fix the name, or create the AgentBlueprint in the Pod's namespace.",
    ),
    "blueprint-mismatch": About(
        "denied",
        "`entra.io/blueprint` names one blueprint, but the agent identity belongs to another.",
        "Make them agree, or drop the `entra.io/blueprint` annotation (the identity implies its blueprint).",
    ),
    "ambiguous-identity": About(
        "denied",
        "The Pod names no identity, and its service account is listed in `spec.serviceAccounts` of several "
        "AgentIdentities.",
        "Name one with the `entra.io/agent-identity` annotation, or list the service account in only one "
        "AgentIdentity.",
    ),
    "invalid-config": About(
        "denied",
        "The AgentBlueprint or AgentIdentity the Pod uses is invalid (for example a blueprint with neither "
        "`clientId` and `tenantId` nor `envFrom`); the message carries the validation error, in the words the "
        "CRDs' validation rules use (from Kubernetes 1.25 the API server refuses such a resource when it is "
        "applied; an older one accepts it, and this denial is where the mistake shows). The values it quotes are "
        "clipped, at most ten problems are named (the rest counted), and a longer message loses its middle, "
        "never the fix at its end.",
        "Fix the resource the message names; `entra-webhook check` lists every invalid one "
        "([check an install](../operations/check.md)).",
    ),
    "identity-not-ready": About(
        "denied",
        "The agent identity is managed by the controller and not Ready yet; the message carries its Ready "
        "condition (at most 1,000 characters: a longer one, written by someone else, loses its middle, never the "
        "fix at its end). The webhook reads it once more from the API server before it denies (the controller may "
        "have just written it); ReplicaSets and Jobs retry, so their Pods come once it is Ready.",
        "Wait, or act on the condition's reason: `kubectl describe agentidentity NAME -n NAMESPACE` "
        "([identity conditions](../troubleshooting/conditions.md)).",
    ),
    "annotations-too-large": About(
        "denied",
        "With the webhook's own annotations (`entra.io/status` and `kubectl.kubernetes.io/default-container`, "
        "about 170 bytes) and, on API servers that copy them, the seccomp profiles as annotations, the Pod's "
        "annotations would pass Kubernetes' limit of 262,144 bytes for all keys and values, and the API server "
        "would refuse the patched Pod with a bare `Too long`.",
        "Shorten or drop annotations; `kubectl.kubernetes.io/last-applied-configuration` is often the largest "
        "(`kubectl apply --server-side` writes none).",
    ),
    "port-conflict": About(
        "denied",
        "A container of the Pod already declares the port the sidecar needs (5000 by default).",
        "Set the `entra.io/sidecar-port` annotation to a free port (or choose another in it).",
    ),
    "volume-conflict": About(
        "denied",
        "The Pod has a volume with a name the sidecar reserves (`entra-identity-token`, `entra-sidecar-tmp`, "
        "`entra-sidecar-keys`, `entra-sidecar-no-api-token`) but not the sidecar. `entra-sidecar-no-api-token` is "
        "the empty, read-only volume the sidecar mounts at the Kubernetes API token path, so that it holds no API "
        "token ([the service-account token](../concepts/service-account-token.md)).",
        "Rename the volume.",
    ),
}
