"""The `Ready` condition of what the controller reports on but does not provision, decided without I/O.

Every AgentBlueprint gets one (is it valid, and can the credential it names be used), and so does an
AgentIdentity that names an existing agent identity (`spec.clientId`, no sponsors): Ready once its
blueprint resolves. Each message names what is wrong and the fix; `check` and `kubectl describe`
show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.common.models import READY, AgentBlueprint, AgentIdentity, ConfigObject, InvalidObject
from webhook.common.text import elide
from webhook.controller.failure import Failure
from webhook.controller.reconcile import MESSAGE_LIMIT, Wanted

RESOLVED = "Resolved"
ACCESS_DENIED = "SecretAccessDenied"
DENIED_PODS = "Pods naming it are denied until then"


def blueprint_problem(namespace: str, name: str, found: ConfigObject | None) -> Failure | None:
    """Why an AgentIdentity's blueprint cannot be used, or None: it exists and is valid."""
    if found is None:
        return Failure(
            "BlueprintNotFound",
            f'namespace "{namespace}" has no AgentBlueprint "{name}": create it, or fix spec.blueprint',
        )
    if isinstance(found, InvalidObject):
        return Failure("BlueprintInvalid", f"{found.message}: fix the AgentBlueprint")
    return None


def blueprint_ready(found: ConfigObject, secret: Failure | None, needed: bool) -> Wanted:
    """A blueprint's Ready: valid, and (client secret) its Secret holds the key.

    `secret` is what reading the Secret found wrong (None: read, the key is there; or no client
    secret). The controller reads only a Secret granted to it, and needs one only to act as the
    blueprint for a managed identity (`needed`); an ungranted Secret is reported only then.
    """
    if isinstance(found, InvalidObject):
        return Wanted(READY, False, "InvalidSpec", f"{found.message}; {DENIED_PODS}")
    assert isinstance(found, AgentBlueprint)
    credential = found.spec.credential
    if credential is None:
        return Wanted(READY, True, RESOLVED, "the sidecar's settings come from spec.envFrom (not read by the "
                      "controller); a managed AgentIdentity also needs spec.tenantId, spec.clientId and "
                      "spec.credential")  # fmt: skip
    reference = credential.client_secret
    if reference is None:
        return Wanted(READY, True, RESOLVED, "workload identity: each Pod signs in with its service account's "
                      "token, once the blueprint has the federated credential status.federatedCredentials lists "
                      "for it")  # fmt: skip
    named = f'key "{reference.key}" of Secret "{reference.secret_name}"'
    if secret is None:
        return Wanted(READY, True, RESOLVED, f"client secret: {named}, which is there")
    if secret.reason == ACCESS_DENIED and not needed:
        return Wanted(READY, True, RESOLVED, f"client secret: {named}, not read (the controller reads only a "
                      "Secret granted to it, which only a managed AgentIdentity of this blueprint needs); each "
                      "Pod's sidecar reads it")  # fmt: skip
    return Wanted(READY, False, secret.reason, secret.message)


def reference_ready(identity: AgentIdentity, blueprint: ConfigObject | None, its_ready: Mapping[str, Any]) -> Wanted:
    """An unmanaged identity's Ready: its blueprint exists, is valid and not reported unready. `its_ready` is
    the blueprint's own Ready condition (empty before the controller wrote one)."""
    name, namespace = identity.spec.blueprint, identity.ref.namespace
    problem = blueprint_problem(namespace, name, blueprint)
    if problem is not None:
        return Wanted(READY, False, problem.reason, f"{problem.message}; {DENIED_PODS}")
    if its_ready.get("status") == "False":
        said = elide(str(its_ready.get("message") or "no message"), MESSAGE_LIMIT // 2)
        return Wanted(READY, False, "BlueprintNotReady", f'AgentBlueprint "{name}" is not ready '
                      f"({its_ready.get('reason') or 'no reason'}): {said}")  # fmt: skip
    return Wanted(READY, True, RESOLVED, f"agent identity {identity.spec.client_id} (spec.clientId, not managed by "
                  f'the controller) under AgentBlueprint "{name}"')  # fmt: skip
