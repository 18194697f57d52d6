"""The alerting rules and the Grafana dashboard: valid for promtool, and only about metrics we export."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.promql import grafana_variable_metrics, metric_names
from webhook.index import ConfigIndex
from webhook.metrics import Metrics

REPO_ROOT = Path(__file__).resolve().parents[1]
ALERTS = REPO_ROOT / "manifests" / "monitoring" / "alerts.yaml"
ALERT_TESTS = REPO_ROOT / "tests" / "monitoring" / "alerts_test.yaml"
DASHBOARD = REPO_ROOT / "charts" / "entra-webhook" / "dashboards" / "entra-webhook.json"
PROMTOOL_BUILD = REPO_ROOT / "scripts" / "promtool-build.sh"

# The series names each kind of metric family exposes (prometheus_client's exposition).
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}
# Prometheus writes `up` for every scrape: the alerts on an unreachable webhook need it.
SCRAPE_SERIES = {"up"}


def exported_families() -> dict[str, str]:
    """Metric family name -> type, from the webhook's own registry (a rename shows up here)."""
    metrics = Metrics(ConfigIndex)
    return {family.name: family.type for family in metrics.registry.collect()}


def exported_series() -> set[str]:
    return {name + suffix for name, kind in exported_families().items() for suffix in SERIES_SUFFIXES[kind]}


@pytest.fixture(scope="module")
def promtool() -> str:
    """Debian's promtool, unpacked from its package into the cache on first use."""
    built = subprocess.run(["bash", str(PROMTOOL_BUILD)], check=True, stdout=subprocess.PIPE, text=True)
    return str(Path(built.stdout.strip().splitlines()[-1]) / "promtool")


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every variable query of the dashboard."""
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield f"variable {variable['name']!r}", query["query"] if isinstance(query, dict) else query


def alert_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["alert"], rule["expr"]


def test_the_exported_series_are_the_webhooks_metrics() -> None:
    assert {
        "entra_webhook_admissions_total",
        "entra_webhook_admission_duration_seconds_bucket",
        "entra_webhook_config_objects",
        "entra_webhook_watch_restarts_total",
        "entra_webhook_certificate_expiry_seconds",
        "entra_webhook_events_total",
    } <= exported_series()


def test_every_dashboard_query_names_only_metrics_the_webhook_exports() -> None:
    exported = exported_series()
    queries = list(dashboard_queries())
    assert len(queries) >= 12
    for where, query in queries:
        named = grafana_variable_metrics(query)
        assert named, f"{where}: names no metric: {query}"
        assert named <= exported, f"{where}: {sorted(named - exported)} not exported by webhook/metrics.py"


def test_the_dashboard_shows_every_metric_family() -> None:
    shown = {name for _, query in dashboard_queries() for name in grafana_variable_metrics(query)}
    for family, kind in exported_families().items():
        assert any(family + suffix in shown for suffix in SERIES_SUFFIXES[kind]), f"no panel shows {family}"


def test_every_alert_names_only_exported_metrics_or_up() -> None:
    allowed = exported_series() | SCRAPE_SERIES
    alerts = dict(alert_expressions())
    assert set(alerts) == {
        "EntraWebhookDown",
        "EntraWebhookReplicaUnreachable",
        "EntraWebhookAdmissionErrors",
        "EntraWebhookDenialsRising",
        "EntraWebhookCertificateExpiresSoon",
        "EntraWebhookWatchRestarting",
    }
    for alert, expression in alerts.items():
        named = metric_names(expression)
        assert named, f"{alert} names no metric"
        assert named <= allowed, f"{alert}: {sorted(named - allowed)} not exported by webhook/metrics.py"


def test_promtool_accepts_the_rule_file(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_the_alerts_fire_as_their_unit_tests_expect(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ('sum by (le) (rate(a_bucket{job=~"$job",x="{b}"}[$__rate_interval]))', {"a_bucket"}),
        ("x / on (i) group_left (j) y offset 1d > bool 0.2 and sum(z) without (k)", {"x", "y", "z"}),
        ('absent(up{job="w"} == 1)', {"up"}),
        ("histogram_quantile(0.9, sum(rate(h_bucket[5m])) by (le)) < 7 * 86400", {"h_bucket"}),
    ],
)
def test_metric_names_skip_functions_labels_grouping_and_numbers(expression: str, names: set[str]) -> None:
    assert metric_names(expression) == names
