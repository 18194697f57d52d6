"""docs/reference/annotations.md: the labels, annotations, env vars and names the project reads or writes.

The keys come from the constants the code uses (webhook/core/pod.py, webhook/core/sidecar.py,
webhook/controller/reconcile.py); what each means is said here, next to them; the example values are what
the core writes for the example Pod.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import jsonpatch

from scripts.reference.markdown import code, fenced, page, table
from scripts.reference.reasons import NAMED, NAMESPACE, SERVER, configuration, pod
from webhook.controller import reconcile
from webhook.core import pod as keys
from webhook.core import sidecar
from webhook.core.decision import Inject, decide
from webhook.core.placement import Mode
from webhook.core.settings import Settings

MODES = " or ".join(code(mode) for mode in get_args(Mode))

# (key, on what, who sets it, values, meaning)
LABELS = (
    (keys.INJECT_LABEL, "Namespace", "you", f"{code('enabled')} or {code('disabled')}",
     "`enabled`: every Pod created in the namespace is sent to the webhook (`namespace.inject.entra.io`, Helm "
     "`webhook.namespaceSelector`). `disabled`: no Pod of the namespace is sent, labelled or not (the manifests "
     "label their own namespace so)."),
    (keys.INJECT_LABEL, "Pod", "you", f"{code('enabled')} or {code('disabled')}",
     "`enabled` opts one Pod in where its namespace has no `entra.io/inject` label (`pod.inject.entra.io`, Helm "
     "`webhook.podSelector`); `disabled` opts a Pod out: the `objectSelector` keeps it from being sent at all."),
)  # fmt: skip
ANNOTATIONS = (
    (keys.AGENT_IDENTITY, "Pod", "you", "an AgentIdentity's name",
     "The agent identity the Pod acts as, in the Pod's namespace; implies its blueprint. Without it, the one "
     "AgentIdentity whose `spec.serviceAccounts` lists the Pod's service account (an empty `serviceAccountName` "
     "is `default`)."),
    (keys.BLUEPRINT, "Pod", "you", "an AgentBlueprint's name",
     "The blueprint whose credential the sidecar uses, in the Pod's namespace: needed only without an agent "
     "identity, or to double-check the identity's."),
    (keys.INJECT_CONTAINERS, "Pod", "you", "container names, comma-separated",
     "The app containers that get the env. Default: every regular container, and in `native` mode every init "
     "container after the sidecar."),
    (keys.SIDECAR_MODE, "Pod", "you", MODES,
     "Where the sidecar goes for this Pod, instead of the operator's default (`--mode`, Helm `sidecar.mode`): "
     "[placement](../concepts/placement.md)."),
    (keys.SIDECAR_PORT, "Pod", "you", "1024 to 65535, ASCII digits",
     "The sidecar's port, when the Pod already uses the default one (`--sidecar-port`, 5000)."),
    (keys.STATUS, "Pod", "the webhook", "JSON, below",
     "What was injected: blueprint, agent identity, sidecar name, mode and the webhook's version. Present on "
     "every injected Pod; a reinvocation leaves it as it is."),
    (keys.DEFAULT_CONTAINER, "Pod", "the webhook, when absent", "the first app container",
     "So that `kubectl logs` and `kubectl exec` pick the app, not the sidecar."),
    (keys.MIRROR, "Pod", "the kubelet", "",
     "A static Pod's mirror: never injected (`mirror-pod`); on Kubernetes 1.30+ the webhook configuration's "
     "`matchConditions` keep it from being sent at all."),
)  # fmt: skip
CONTROLLER = (
    (reconcile.FINALIZER, "AgentIdentity (finalizer)", "the controller", "",
     "Holds a managed AgentIdentity until its Entra identity is deleted (or retained: `deletionPolicy`)."),
    (reconcile.MARKER_PREFIX + "CLUSTER:UID", "agent identity in Entra (tag)", "the controller", "",
     "The marker on every identity the controller creates: `--cluster-name` and the resource's uid. It finds "
     "an identity whose create answer was lost, and never makes a second one."),
    (reconcile.SPONSORS_PREFIX + "HASH", "agent identity in Entra (tag)", "the controller", "",
     "A hash of the sponsor ids it set, written with them: without a directory app (which may read sponsors) it "
     "tells sponsors edited in Entra from its own."),
)  # fmt: skip
APP_ENV = (
    (sidecar.SIDECAR_URL, "Always: `http://localhost:PORT`. The app calls the sidecar here (never `127.0.0.1`: "
     "the sidecar checks the Host header)."),
    (sidecar.BLUEPRINT_APP_ID, "The blueprint's `clientId`, when the blueprint has one."),
    (sidecar.AGENT_IDENTITY_APP_ID, "With an agent identity: its client id (`spec.clientId`, else `status.clientId`); "
     "the app appends it as `?AgentIdentity=`."),
)  # fmt: skip
NAMES = (
    (keys.SIDECAR_NAME, "container", "The sidecar: first in `containers`, or first in `initContainers` with "
     "`restartPolicy: Always` in `native` mode. A Pod that has one gets no second."),
    *((name, "volume", "Reserved for the sidecar: a Pod with a volume of this name but no sidecar is denied "
       "(`volume-conflict`).") for name in sidecar.VOLUME_NAMES),
)  # fmt: skip


def example(root: Path) -> tuple[str, dict[str, str]]:
    """The status annotation and the app container's env the core writes for the example Pod."""
    result = decide(pod(NAMED), NAMESPACE, configuration(root, ()), Settings(), SERVER)
    assert isinstance(result, Inject)
    injected = jsonpatch.apply_patch(pod(NAMED), result.ops)
    app = next(c for c in injected["spec"]["containers"] if c["name"] == "app")
    return injected["metadata"]["annotations"][keys.STATUS], {e["name"]: e["value"] for e in app["env"]}


def render(root: Path) -> str:
    status, env = example(root)
    header = ("key", "on", "set by", "values", "meaning")
    return page(
        "Annotations, labels and names",
        "the constants in webhook/core/pod.py, webhook/core/sidecar.py and webhook/controller/reconcile.py",
        "Everything the project reads from or writes to Kubernetes and Entra objects besides the two custom "
        "resources ([custom resources](custom-resources.md)).",
        "## Labels",
        table(header, ((code(k), *rest) for k, *rest in LABELS)),
        "## Annotations",
        table(header, ((code(k), *rest) for k, *rest in ANNOTATIONS)),
        f"The {code(keys.STATUS)} the webhook writes for a Pod naming `sales-agent` (from `examples/`) on "
        "Kubernetes 1.36:",
        fenced(status, "json"),
        "## Env of the app containers",
        "Added to each app container only where the name is not set already:",
        table(("variable", "value"), ((code(k), v) for k, v in APP_ENV)),
        "For the same Pod:",
        fenced("\n".join(f"{name}={value}" for name, value in env.items()), "sh"),
        "## Names the sidecar takes",
        table(("name", "of a", "meaning"), ((code(k), *rest) for k, *rest in NAMES)),
        "## Kept by the controller",
        table(header, ((code(k), *rest) for k, *rest in CONTROLLER)),
    )
