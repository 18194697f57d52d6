"""`check --namespace` and `check -f`: what would happen to each workload's Pods, and why.

Each Pod template becomes a server-side dry-run create: the real admission chain (our webhook with the
cluster's blueprints and identities, and every other admission plugin) answers, nothing is stored. The
webhook configuration's selectors, evaluated here, say why a Pod the webhook never saw was not injected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from webhook.common.models import PLURALS, AgentBlueprint, AgentIdentity, InvalidObject, is_config, parse_object
from webhook.common.text import NAME_LIMIT, clip, listing
from webhook.core.workloads import Template, find_templates, flatten
from webhook.ops.cluster import Cluster, items, labels_of, mapping, path
from webhook.ops.report import Report
from webhook.ops.selectors import describe, matches

STATUS = "entra.io/status"
INJECT = "entra.io/inject"
# kind -> (API path under /apis or /api, resource)
WORKLOADS = {
    "Deployment": ("apis/apps/v1", "deployments"),
    "StatefulSet": ("apis/apps/v1", "statefulsets"),
    "DaemonSet": ("apis/apps/v1", "daemonsets"),
    "ReplicaSet": ("apis/apps/v1", "replicasets"),
    "ReplicationController": ("api/v1", "replicationcontrollers"),
    "CronJob": ("apis/batch/v1", "cronjobs"),
    "Job": ("apis/batch/v1", "jobs"),
    "Pod": ("api/v1", "pods"),
}
ROLLED = {"Deployment": "deployment", "StatefulSet": "statefulset", "DaemonSet": "daemonset"}


def selecting(
    configuration: Mapping[str, Any] | None, namespace: Mapping[str, Any], pod_labels: Mapping[str, str]
) -> list[str]:
    """The webhook entries that receive a Pod with these labels in this namespace."""
    hooks = (configuration or {}).get("webhooks") or []
    return [
        str(hook.get("name"))
        for hook in hooks
        if matches(hook.get("namespaceSelector"), labels_of(dict(namespace)))
        and matches(hook.get("objectSelector"), pod_labels)
    ]


def namespace_routing(report: Report, configuration: Mapping[str, Any] | None, namespace: Mapping[str, Any]) -> None:
    """Which Pods of the namespace the webhook receives, by its labels."""
    name = namespace["metadata"]["name"]
    subject = f'namespace "{name}"'
    label = labels_of(dict(namespace)).get(INJECT)
    every = selecting(configuration, namespace, {})
    opted = selecting(configuration, namespace, {INJECT: "enabled"})
    if every:
        report.ok(subject, f"{INJECT}={label or '(unset)'}: every Pod is sent to the webhook ({', '.join(every)}), "
                  f"except Pods labelled {INJECT}=disabled")  # fmt: skip
    elif opted:
        report.warn(subject, f"not labelled {INJECT}=enabled: only Pods labelled {INJECT}=enabled are sent to the "
                    f"webhook ({', '.join(opted)})", f"kubectl label namespace {name} {INJECT}=enabled")  # fmt: skip
    elif label == "disabled":
        report.warn(subject, f"labelled {INJECT}=disabled: no Pod in it is ever sent to the webhook",
                    f"kubectl label namespace {name} {INJECT}=enabled --overwrite")  # fmt: skip
    else:
        selectors = "; ".join(
            f"{hook.get('name')}: namespaces {describe(hook.get('namespaceSelector'))}"
            for hook in (configuration or {}).get("webhooks") or []
        )
        report.warn(subject, f"no webhook entry selects it ({selectors or 'no webhook configuration'})",
                    f"kubectl label namespace {name} {INJECT}=enabled")  # fmt: skip


def namespace_pods(report: Report, cluster: Cluster, configuration: Mapping[str, Any] | None, name: str) -> None:
    found = cluster.get(path("api", "v1", "namespaces", name))
    if found.status == 404:
        report.fail(f'namespace "{name}"', "does not exist", f"kubectl create namespace {name}")
        return
    namespace = found.body
    namespace_routing(report, configuration, namespace)
    templates = 0
    for kind, (prefix, resource) in WORKLOADS.items():
        for workload in items(cluster.get(f"/{prefix}/namespaces/{name}/{resource}")):
            if _owned(workload):
                continue  # its owner's template is checked (a Deployment's ReplicaSets, a CronJob's Jobs)
            workload.setdefault("kind", kind)
            workload.setdefault("apiVersion", prefix.removeprefix("apis/").removeprefix("api/"))
            for template in find_templates(workload):
                templates += 1
                explain(report, cluster, configuration, namespace, template, name)
                if kind in ROLLED:
                    _stale_pods(report, cluster, name, kind, workload)
    if not templates:
        report.ok(f'namespace "{name}"', "no workload yet (check -f FILE says what a file's Pods would get)")


def _owned(workload: Mapping[str, Any]) -> bool:
    owners = (workload.get("metadata") or {}).get("ownerReferences") or []
    return any(owner.get("controller") for owner in owners)


def explain(
    report: Report,
    cluster: Cluster,
    configuration: Mapping[str, Any] | None,
    namespace: Mapping[str, Any],
    template: Template,
    namespace_name: str,
    pending: Iterable[str] = (),
) -> None:
    """What the admission chain does to a Pod made from `template`, asked with a dry-run create."""
    subject = f"{template.kind} {namespace_name}/{template.name}"
    metadata = mapping(template.pod.get("metadata"))
    pod_labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": clip(f"{template.name}-", 200),
            "namespace": namespace_name,
            "labels": pod_labels,
            "annotations": metadata.get("annotations") or {},
        },
        "spec": template.pod.get("spec"),
    }
    if template.kind == "Pod":
        pod["metadata"] = {**metadata, "namespace": namespace_name}
    answer = cluster.dry_run_create(path("api", "v1", "namespaces", namespace_name, "pods"), pod)
    ours = [_without_subject(w) for w in answer.warnings() if f'in namespace "{namespace_name}": ' in w]
    if not answer.ok:
        said = answer.message
        if "denied the request: " in said:
            denial = _without_subject(said.split("denied the request: ", 1)[1])
            missing = [name for name in pending if f'names "{name}", but namespace' in denial]
            fix = (
                f"apply the file's {listing(missing)} first (a dry run stores nothing)"
                if missing
                else "the message says what to change"
            )
            report.fail(subject, f"its Pods are denied: {denial}", fix)
        else:
            report.fail(subject, f"the API server refuses its Pods ({answer.status}): {clip(said, 400)}")
        return
    annotations = (answer.body.get("metadata") or {}).get("annotations") or {}
    if STATUS in annotations:
        report.ok(subject, "its Pods get the sidecar: " + _injected(annotations[STATUS]))
        for warning in ours:
            report.warn(subject, warning)
        return
    if ours:
        report.warn(subject, f"its Pods start without a sidecar: {'; '.join(ours)}")
        return
    receivers = selecting(configuration, namespace, pod_labels)
    if pod_labels.get(INJECT) == "disabled":
        report.ok(subject, f"opted out ({INJECT}=disabled): never sent to the webhook")
    elif not receivers:
        report.warn(subject, f"its Pods are never sent to the webhook: namespace \"{namespace_name}\" is not labelled "
                    f"{INJECT}=enabled, nor are they", f"kubectl label namespace {namespace_name} {INJECT}=enabled, or "
                    f"label the Pod template {INJECT}=enabled")  # fmt: skip
    else:
        report.fail(subject, f"sent to {', '.join(receivers)}, but admitted without a word from the webhook (is it "
                    "down with failurePolicy Ignore?)", "see the install lines above")  # fmt: skip


def _without_subject(message: str) -> str:
    """A webhook message without its `pod "x" in namespace "y": ` start (the line names the workload)."""
    head, separator, rest = message.partition('": ')
    return rest if separator and head.startswith(('pod "', "pod ")) and len(head) < NAME_LIMIT * 2 else message


def _injected(status: str) -> str:
    try:
        said = json.loads(status)
    except ValueError:
        said = {}
    parts = [f'blueprint "{said.get("blueprint")}"']
    if said.get("agentIdentity"):
        parts.append(f'agent identity "{said.get("agentIdentity")}"')
    parts.append(f"{said.get('mode', '?')} sidecar {said.get('sidecar', '?')}")
    return ", ".join(parts)


def _stale_pods(report: Report, cluster: Cluster, namespace: str, kind: str, workload: Mapping[str, Any]) -> None:
    """Running Pods of a workload made before it was injected (or while the webhook did not see them)."""
    selector = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not selector:
        return
    query = ",".join(f"{key}={value}" for key, value in selector.items())
    pods = items(cluster.get(path("api", "v1", "namespaces", namespace, "pods"), (("labelSelector", query),)))
    bare = [p for p in pods if STATUS not in ((p.get("metadata") or {}).get("annotations") or {})]
    if bare:
        name = workload["metadata"]["name"]
        report.warn(
            f"{kind} {namespace}/{name}",
            f"{len(bare)} of its {len(pods)} Pods run without the sidecar (made before it applied)",
            f"kubectl rollout restart {ROLLED[kind]}/{name} -n {namespace}",
        )


def file_pods(
    report: Report,
    cluster: Cluster,
    configuration: Mapping[str, Any] | None,
    documents: list[Any],
    default_namespace: str,
) -> None:
    """A file's resources (dry-run created: what the CRDs refuse) and the Pods of its workloads."""
    pending: list[str] = []
    namespaces: dict[str, Any] = {}
    for document in flatten(documents):
        if isinstance(document, dict) and is_config(document):
            pending += _resource(report, cluster, document, default_namespace)
    for document in documents:
        for template in find_templates(document):
            namespace = template.namespace or default_namespace
            if namespace not in namespaces:
                found = cluster.get(path("api", "v1", "namespaces", namespace))
                namespaces[namespace] = found.body if found.ok else None
                if found.ok:
                    namespace_routing(report, configuration, found.body)
                else:
                    report.fail(f'namespace "{namespace}"', "does not exist",
                                f"kubectl create namespace {namespace}, or pass --namespace")  # fmt: skip
            if namespaces[namespace] is not None:
                explain(report, cluster, configuration, namespaces[namespace], template, namespace, pending)
    if not pending and not any(True for d in documents for _ in find_templates(d)):
        report.warn("file", "holds no workload and no AgentBlueprint or AgentIdentity")


def _resource(report: Report, cluster: Cluster, document: dict[str, Any], default_namespace: str) -> list[str]:
    """Dry-run create one of our resources; the names it defines that the cluster does not have yet."""
    metadata = mapping(document.get("metadata"))
    namespace = str(metadata.get("namespace") or default_namespace)
    name = str(metadata.get("name") or "")
    kind = str(document["kind"])
    subject = f"{kind} {namespace}/{name}"
    body = {**document, "metadata": {**metadata, "namespace": namespace}}
    body.pop("status", None)
    answer = cluster.dry_run_create(path("apis", "entra.io", "v1alpha1", "namespaces", namespace, PLURALS[kind]), body)
    parsed = parse_object(body, namespace) if name else None
    if answer.status == 409:
        report.ok(subject, "already in the cluster (its stored version is checked above)")
        return []
    if not answer.ok:
        report.fail(subject, f"the API server refuses it: {clip(answer.message, 600)}", "correct it")
        return []
    if isinstance(parsed, InvalidObject):
        said = parsed.message.split(" is invalid: ", 1)[-1]
        report.fail(subject, f"this API server accepts it, but it is invalid: {said}", "correct it: Pods naming it "
                    "would be denied (servers from Kubernetes 1.25 refuse it at apply time)")  # fmt: skip
        return []
    if isinstance(parsed, AgentBlueprint | AgentIdentity):
        report.ok(subject, "the API server accepts it")
    return [name]
