"""`check` of every AgentBlueprint and AgentIdentity: valid, naming what exists, and Ready as their conditions say."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from webhook.common.kubeapi import api_errors, describe_api_error, list_raw
from webhook.common.models import (
    BLUEPRINT,
    IDENTITY,
    MESSAGE_LIMIT,
    READY,
    AgentBlueprint,
    AgentIdentity,
    ConfigObject,
    InvalidObject,
)
from webhook.common.text import elide, listing
from webhook.ops.cluster import Cluster, mapping, path
from webhook.ops.report import Report


@dataclass
class Inventory:
    """What the resource checks found, for the later sections (the controller's, the namespace's)."""

    objects: list[ConfigObject] = field(default_factory=list)
    managed: int = 0
    problems: int = 0


def resources(report: Report, cluster: Cluster, namespace: str | None) -> Inventory:
    where = f'namespace "{namespace}"' if namespace else "the cluster"
    try:
        found = list_raw(cluster.api, namespace, cluster.timeout)
    except api_errors() as error:  # the CRDs missing (reported above) or no permission to list
        report.fail("AgentBlueprints and AgentIdentities", f"cannot list them in {where} ({describe_api_error(error)})",
                    "install the CRDs (see above), or use a kubeconfig that may list them")  # fmt: skip
        return Inventory()
    inventory = Inventory([parsed for _, parsed in found])
    blueprints = {(o.ref.namespace, o.ref.name) for o in inventory.objects if o.ref.kind == BLUEPRINT}
    secrets = _Lookups(cluster)
    for raw, parsed in found:
        subject = f"{parsed.ref.kind} {parsed.ref.namespace}/{parsed.ref.name}"
        describe = f"kubectl describe {parsed.ref.kind.lower()} {parsed.ref.name} -n {parsed.ref.namespace}"
        problems = report.problems
        if isinstance(parsed, InvalidObject):
            said = parsed.message.split(" is invalid: ", 1)[-1]
            report.fail(subject, f"invalid: {said}", f"kubectl edit {parsed.ref.kind.lower()} {parsed.ref.name} "
                        f"-n {parsed.ref.namespace}; Pods naming it are denied until then")  # fmt: skip
        elif isinstance(parsed, AgentIdentity):
            inventory.managed += parsed.spec.managed
            if (parsed.ref.namespace, parsed.spec.blueprint) not in blueprints:
                report.fail(subject, f'names blueprint "{parsed.spec.blueprint}", which namespace '
                            f'"{parsed.ref.namespace}" has not: its Pods are denied',
                            "create that AgentBlueprint, or fix spec.blueprint")  # fmt: skip
            _conditions(report, subject, describe, raw, managed=parsed.spec.managed)
        elif isinstance(parsed, AgentBlueprint):
            _blueprint_references(report, subject, parsed, secrets)
            _conditions(report, subject, describe, raw, managed=False)
        inventory.problems += report.problems > problems
    _shared_service_accounts(report, inventory.objects)
    if not inventory.problems:
        counts = {kind: sum(o.ref.kind == kind for o in inventory.objects) for kind in (BLUEPRINT, IDENTITY)}
        report.ok("AgentBlueprints and AgentIdentities", f"{counts[BLUEPRINT]} and {counts[IDENTITY]} "
                  f"({inventory.managed} managed) in {where}, none with a problem")  # fmt: skip
    return inventory


def _conditions(report: Report, subject: str, describe: str, raw: dict[str, Any], *, managed: bool) -> None:
    status = mapping(raw.get("status"))
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    generation = (raw.get("metadata") or {}).get("generation")
    ready = next((c for c in conditions if c.get("type") == READY), None)
    if ready is None and managed:
        report.fail(subject, "the controller has not reported on it yet, and Pods naming it are denied until it is "
                    "Ready", "is the controller running? see the Controller section")  # fmt: skip
    for condition in conditions:
        if condition.get("status") == "True":
            continue
        said = elide(str(condition.get("message") or "no message"), MESSAGE_LIMIT)
        line = f"{condition.get('type')}={condition.get('status')} ({condition.get('reason') or 'no reason'}): {said}"
        (report.fail if condition.get("type") == READY else report.warn)(subject, line, describe)
    observed = [int(c["observedGeneration"]) for c in conditions if isinstance(c.get("observedGeneration"), int)]
    if observed and isinstance(generation, int) and max(observed) < generation:
        report.warn(subject, f"its conditions are of generation {max(observed)}, the resource is at {generation}: "
                    "the controller has not caught up with its last change", "wait, or see the controller")  # fmt: skip


class _Lookups:
    """Secrets and ConfigMaps a blueprint names, each read once; permission to read them is not assumed."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.found: dict[tuple[str, str, str], dict[str, Any] | str | None] = {}

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | str | None:
        """The object, None when it does not exist, or why it could not be read."""
        key = (kind, namespace, name)
        if key not in self.found:
            answer = self.cluster.get(path("api", "v1", "namespaces", namespace, kind, name))
            if answer.status == 404:
                self.found[key] = None
            elif answer.ok and isinstance(answer.body, dict):
                self.found[key] = answer.body
            else:
                self.found[key] = f"{answer.status} {answer.message}"
        return self.found[key]


def _blueprint_references(report: Report, subject: str, blueprint: AgentBlueprint, lookups: _Lookups) -> None:
    namespace = blueprint.ref.namespace
    secret = blueprint.spec.credential.client_secret if blueprint.spec.credential else None
    if secret is not None:
        found = lookups.get("secrets", namespace, secret.secret_name)
        if found is None:
            report.fail(subject, f'its client secret\'s Secret "{secret.secret_name}" does not exist: its sidecars '
                        "cannot start (CreateContainerConfigError)",
                        f"kubectl create secret generic {secret.secret_name} -n {namespace} "
                        f"--from-literal={secret.key}=...")  # fmt: skip
        elif isinstance(found, str):
            report.warn(subject, f'cannot read Secret "{secret.secret_name}" ({found}): not checked')
        elif secret.key not in (found.get("data") or {}):
            have = listing(sorted(found.get("data") or {})) or "none"
            report.fail(subject, f'Secret "{secret.secret_name}" has no key "{secret.key}" (have: {have}): its '
                        "sidecars cannot start", "add the key, or fix spec.credential.clientSecret.key")  # fmt: skip
    for source in blueprint.spec.env_from:
        ref, kind = (source.config_map_ref, "configmaps") if source.config_map_ref else (source.secret_ref, "secrets")
        if ref is None or ref.optional:
            continue
        found = lookups.get(kind, namespace, ref.name)
        label = "ConfigMap" if kind == "configmaps" else "Secret"
        if found is None:
            report.fail(subject, f'envFrom names {label} "{ref.name}", which does not exist: its sidecars cannot start',
                        f"create it in namespace {namespace}, or mark it optional")  # fmt: skip
        elif isinstance(found, str):
            report.warn(subject, f'cannot read {label} "{ref.name}" ({found}): not checked')


def _shared_service_accounts(report: Report, objects: list[ConfigObject]) -> None:
    """A service account listed by two identities of one namespace: its unannotated Pods are denied."""
    listed: dict[tuple[str, str], list[str]] = defaultdict(list)
    for obj in objects:
        if isinstance(obj, AgentIdentity):
            for account in obj.spec.service_accounts:
                listed[(obj.ref.namespace, account)].append(obj.ref.name)
    for (namespace, account), names in sorted(listed.items()):
        if len(names) > 1:
            report.fail(f"service account {namespace}/{account}", f"listed in spec.serviceAccounts of several "
                        f"AgentIdentities ({listing(sorted(names))}): its Pods without an annotation are denied",
                        "list it in one of them only")  # fmt: skip
