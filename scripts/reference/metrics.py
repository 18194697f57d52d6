"""docs/reference/metrics.md: every metric both processes export, read from their registries, and every alert,
read from the rule file the chart renders (manifests/monitoring/alerts.yaml, checked by `make lint`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from scripts.reference.markdown import code, fenced, page, prose, table
from webhook.controller.metrics import ControllerMetrics
from webhook.core.index import ConfigIndex
from webhook.injector.metrics import Metrics

EXPOSED = {"counter": "_total", "histogram": "", "gauge": "", "summary": ""}


def registries() -> list[tuple[str, str, CollectorRegistry]]:
    """(title, where it is served, registry) of each process, every labelled metric given one child so that
    its label names show in what the registry collects."""
    webhook = Metrics(ConfigIndex)
    controller = ControllerMetrics()
    controller.follow(lambda: {("True", "Provisioned"): 1}, lambda: 0)
    for owner in (webhook, controller):
        for metric in vars(owner).values():
            if isinstance(metric, MetricWrapperBase):
                names = vars(metric)["_labelnames"]
                if names:
                    metric.labels(*names)
    served = "`--metrics-port` (9090), path `/metrics`"
    return [
        ("The webhook (`entra-webhook serve`)", served, webhook.registry),
        ("The controller (`entra-webhook controller`)", served, controller.registry),
    ]


def metrics(registry: CollectorRegistry) -> Iterator[tuple[str, str, str, str]]:
    """(name as queried, type, labels, help) of each metric in the registry."""
    for family in registry.collect():
        labels = sorted({name for sample in family.samples for name in sample.labels if name != "le"})
        name = family.name + EXPOSED.get(family.type, "")
        yield name, family.type, ", ".join(code(label) for label in labels), family.documentation


def names() -> set[str]:
    """Every metric name as a query spells it (counters with `_total`)."""
    return {name for _, _, registry in registries() for name, *_ in metrics(registry)}


def alert_groups(root: Path) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load((root / "manifests" / "monitoring" / "alerts.yaml").read_text())[
        "groups"
    ]
    return groups


def alerts(root: Path) -> str:
    groups = alert_groups(root)
    summary = [
        (f"[{rule['alert']}](#{rule['alert'].lower()})", code(group["name"]), rule["labels"]["severity"],
         rule.get("for", "at once"), rule.get("annotations", {}).get("summary", ""))
        for group in groups
        for rule in group["rules"]
    ]  # fmt: skip
    parts = [table(("alert", "group", "severity", "pending for", "summary"), summary)]
    for group in groups:
        parts.append(f"### Group `{group['name']}`")
        for rule in group["rules"]:
            notes = rule.get("annotations", {})
            wait = f", for {rule['for']}" if "for" in rule else ", at once"
            parts += [
                f"#### {rule['alert']}",
                f"**{rule['labels']['severity']}**{wait}. {prose(notes.get('summary', ''))}",
                prose(notes.get("description", "")),
                fenced(rule["expr"], "promql"),
            ]
    return "\n\n".join(parts)


def render(root: Path) -> str:
    sections = []
    for title, served, registry in registries():
        sections += [
            f"## {title}",
            f"Plain HTTP on {served}.",
            table(("metric", "type", "labels", "meaning"), ((code(n), t, ls, h) for n, t, ls, h in metrics(registry))),
        ]
    sections += [
        "## Alerts",
        "The chart's alerting rules (`metrics.prometheusRule.enabled` makes them a PrometheusRule; "
        "`manifests/monitoring/alerts.yaml` is the same rules as a plain rule file), as rendered with the "
        "default values: the `job` selectors and thresholds follow the `metrics.prometheusRule.*` values. The "
        "controller's group exists only with `controller.enabled`. How to scrape and route them: "
        "[monitoring](../operations/monitoring.md).",
        alerts(root),
    ]
    return page(
        "Metrics and alerts",
        "webhook/injector/metrics.py, webhook/controller/metrics.py and manifests/monitoring/alerts.yaml",
        *sections,
    )
