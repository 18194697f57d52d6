"""`entra-webhook check`: an install, its resources, and optionally a namespace's or a file's Pods, from a
kubeconfig. One line per check (what is wrong, and the fix); exit status 1 when a check failed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from webhook.common.kubeapi import context_namespace, user_client
from webhook.core.documents import load_documents
from webhook.ops import install, pods
from webhook.ops.cluster import Cluster, Unreachable
from webhook.ops.report import Report
from webhook.ops.resources import resources


def run_check(args: argparse.Namespace) -> int:
    names = install.Names(args.webhook_configuration, args.tls_secret, args.lease_namespace, args.lease_name)
    documents: list[Any] = []
    if args.file:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        documents = load_documents(text, args.file)
    api = user_client(args.kubeconfig, args.context)
    report = Report()
    try:
        _check(report, Cluster(api, args.timeout), names, args, documents)
    except Unreachable as error:
        report.fail("API server", f"stopped answering ({error})", "check the network, then run check again")
    return report.summary()


def _check(
    report: Report, cluster: Cluster, names: install.Names, args: argparse.Namespace, documents: list[Any]
) -> None:
    report.section("Install")
    found = install.api_server(report, cluster)
    if found is None:
        return
    _, now = found
    crds = install.crds(report, cluster)
    configuration = install.webhook_configuration(report, cluster, names, now)
    if configuration is not None:
        install.admission(report, cluster, configuration)
    report.section(
        "AgentBlueprints and AgentIdentities" + (f' in namespace "{args.namespace}"' if args.namespace else "")
    )
    inventory = resources(report, cluster, args.namespace) if crds else None
    report.section("Controller")
    install.controller(report, cluster, names, now, inventory.managed if inventory else 0)
    if args.namespace and not args.file:
        report.section(f'Pods of namespace "{args.namespace}"')
        pods.namespace_pods(report, cluster, configuration, args.namespace)
    if args.file:
        report.section(f"Pods of {args.file}")
        namespace = args.namespace or context_namespace(args.kubeconfig, args.context) or "default"
        pods.file_pods(report, cluster, configuration, documents, namespace)


def check_flags(flags: Any) -> None:
    """`check`'s flags (a `webhook.common.settings.Flags`)."""
    flags.add("--kubeconfig", type=Path, metavar="PATH", help="the cluster to check",
              default_text="$KUBECONFIG, else ~/.kube/config, else the in-cluster service account")  # fmt: skip
    flags.add("--context", metavar="NAME", help="the kubeconfig context to use", default_text="its current context")
    flags.add("-n", "--namespace", metavar="NAME", help="check this namespace: its resources, and what happens to "
              "its workloads' Pods and why (with --file: the namespace of objects that name none)",
              default_text="every namespace's resources, no Pods")  # fmt: skip
    flags.add("-f", "--file", metavar="FILE", help="check what happens to the Pods of this YAML file's workloads "
              "(- for stdin), and its AgentBlueprints and AgentIdentities, by server-side dry runs",
              default_text="none")  # fmt: skip
    flags.add("--webhook-configuration", metavar="NAME", default="entra-webhook",
              help="the MutatingWebhookConfiguration of the install", default_text="entra-webhook")  # fmt: skip
    flags.add("--tls-secret", metavar="NAME", default="entra-webhook-tls", default_text="entra-webhook-tls",
              help="the serving certificate's Secret, in the webhook Service's namespace")  # fmt: skip
    flags.add("--lease-namespace", metavar="NAME", default="entra-system", default_text="entra-system",
              help="the controller's Lease's namespace")  # fmt: skip
    flags.add("--lease-name", metavar="NAME", default="entra-webhook-controller",
              default_text="entra-webhook-controller", help="the controller's Lease")  # fmt: skip
    flags.add("--timeout", type=float, metavar="SECONDS", default=10.0, default_text="10",
              help="the longest wait for one answer")  # fmt: skip
