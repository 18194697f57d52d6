"""The alerting rules and the Grafana dashboard: valid for promtool, and only about metrics we export.

Two processes export metrics, each from a registry of its own: the webhook (webhook/injector/metrics.py) and the
provisioning controller (webhook/controller/metrics.py). Their names are read from those registries here,
so a rename or a removal shows up as a dashboard or alert query that names nothing exported.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from tests.promql import grafana_variable_metrics, metric_names
from webhook.controller.metrics import ControllerMetrics
from webhook.core.index import ConfigIndex
from webhook.injector.metrics import Metrics

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
# Prometheus writes `up` for every scrape: the alerts on unreachable replicas need it.
SCRAPE_SERIES = {"up"}
# The rule group of each process's alerts.
WEBHOOK, CONTROLLER = "entra-webhook", "entra-webhook-controller"


def webhook_registry() -> CollectorRegistry:
    return Metrics(ConfigIndex).registry


def controller_registry() -> CollectorRegistry:
    """The controller's registry with what it reads at scrape time (identities by Ready reason, the queue)."""
    metrics = ControllerMetrics()
    metrics.follow(dict, int)  # no identities, an empty queue: the families are there all the same
    return metrics.registry


REGISTRIES = {WEBHOOK: webhook_registry, CONTROLLER: controller_registry}
# The dashboard's variable for each process's scrape job.
JOB_VARIABLES = {WEBHOOK: "job", CONTROLLER: "controller_job"}


def exported_families(component: str) -> dict[str, str]:
    """Metric family name -> type, from the component's own registry."""
    return {family.name: family.type for family in REGISTRIES[component]().collect()}


def exported_series(*components: str) -> set[str]:
    return {
        name + suffix
        for component in components or tuple(REGISTRIES)
        for name, kind in exported_families(component).items()
        for suffix in SERIES_SUFFIXES[kind]
    }


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


def alert_expressions() -> dict[str, dict[str, str]]:
    """Rule group -> alert name -> expression."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {group["name"]: {rule["alert"]: rule["expr"] for rule in group["rules"]} for group in groups}


def test_the_exported_series_are_the_webhooks_metrics() -> None:
    assert exported_series(WEBHOOK) >= {
        "entra_webhook_admissions_total",
        "entra_webhook_admission_duration_seconds_bucket",
        "entra_webhook_config_objects",
        "entra_webhook_watch_restarts_total",
        "entra_webhook_certificate_expiry_seconds",
        "entra_webhook_events_total",
    }


def test_the_exported_series_are_the_controllers_metrics() -> None:
    assert exported_series(CONTROLLER) >= {
        "entra_controller_reconciles_total",
        "entra_controller_graph_requests_total",
        "entra_controller_graph_request_duration_seconds_bucket",
        "entra_controller_token_acquisitions_total",
        "entra_controller_leader",
        "entra_controller_watch_restarts_total",
        "entra_controller_queue_depth",
        "entra_controller_agent_identities",
    }


def test_every_dashboard_query_names_only_metrics_the_webhook_or_the_controller_exports() -> None:
    exported = {component: exported_series(component) for component in REGISTRIES}
    queries = list(dashboard_queries())
    assert len(queries) >= 30
    for where, query in queries:
        named = grafana_variable_metrics(query)
        assert named, f"{where}: names no metric: {query}"
        # One process's metrics per query: the two are scraped as different jobs.
        assert any(named <= series for series in exported.values()), (
            f"{where}: {sorted(named)} are not all exported by webhook/injector/metrics.py, nor all by "
            "webhook/controller/metrics.py"
        )


def test_each_dashboard_panel_selects_the_job_of_the_process_it_shows() -> None:
    exported = {component: exported_series(component) for component in REGISTRIES}
    for where, query in dashboard_queries():
        if where.startswith("variable"):
            continue
        (component,) = [c for c, series in exported.items() if grafana_variable_metrics(query) <= series]
        matchers = re.findall(r"\{[^}]*\}", query)
        assert matchers, f"{where}: selects no job: {query}"
        for matcher in matchers:
            assert f'job=~"${JOB_VARIABLES[component]}"' in matcher, f"{where}: {matcher} is not {component}'s job"


def test_the_dashboard_shows_every_metric_family_of_both() -> None:
    shown = {name for _, query in dashboard_queries() for name in grafana_variable_metrics(query)}
    for component in REGISTRIES:
        for family, kind in exported_families(component).items():
            assert any(family + suffix in shown for suffix in SERIES_SUFFIXES[kind]), f"no panel shows {family}"


def test_each_group_of_alerts_names_only_its_own_process_metrics_or_up() -> None:
    groups = alert_expressions()
    assert {group: set(alerts) for group, alerts in groups.items()} == {
        WEBHOOK: {
            "EntraWebhookDown",
            "EntraWebhookReplicaUnreachable",
            "EntraWebhookAdmissionErrors",
            "EntraWebhookDenialsRising",
            "EntraWebhookCertificateExpiresSoon",
            "EntraWebhookWatchRestarting",
        },
        CONTROLLER: {
            "EntraControllerDown",
            "EntraControllerReplicaUnreachable",
            "EntraControllerNoLeader",
            "EntraControllerMultipleLeaders",
            "EntraControllerIdentitiesNotReady",
            "EntraControllerReconcilesFailing",
            "EntraControllerGraphThrottled",
            "EntraControllerGraphUnreachable",
            "EntraControllerTokensFailing",
            "EntraControllerWatchRestarting",
        },
    }
    for group, alerts in groups.items():
        allowed = exported_series(group) | SCRAPE_SERIES
        for alert, expression in alerts.items():
            named = metric_names(expression)
            assert named, f"{alert} names no metric"
            assert named <= allowed, f"{alert}: {sorted(named - allowed)} not exported by the {group} process"


def test_every_alert_has_unit_tests_that_it_fires_and_that_it_stays_quiet() -> None:
    checks = [check for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"] for check in case["alert_rule_test"]]
    alerts = {alert for group in alert_expressions().values() for alert in group}
    assert {check["alertname"] for check in checks if check["exp_alerts"]} == alerts
    assert {check["alertname"] for check in checks if not check["exp_alerts"]} == alerts


def test_promtool_accepts_the_rule_file(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 16 rules found" in result.stdout


def test_the_alerts_fire_as_their_unit_tests_expect(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_documented_scrape_jobs_are_the_jobs_the_alerts_select() -> None:
    """Without prometheus-operator, the monitoring page's scrape config gives the series the jobs the rule file
    selects."""
    page = (REPO_ROOT / "docs" / "operations" / "monitoring.md").read_text()
    (block,) = [b.split("```", 1)[0] for b in page.split("```yaml\n")[1:] if b.startswith("scrape_configs:")]
    jobs = yaml.safe_load(block)["scrape_configs"]
    selected = {
        group: set(re.findall(r'job="([^"]+)"', " ".join(alerts.values())))
        for group, alerts in alert_expressions().items()
    }
    assert selected == {WEBHOOK: {"entra-webhook"}, CONTROLLER: {"entra-webhook-controller-metrics"}}
    assert [job["job_name"] for job in jobs] == ["entra-webhook", "entra-webhook-controller-metrics"]
    for job in jobs:
        (keep,) = job["relabel_configs"]
        assert keep["regex"] == f"{job['job_name']};metrics"  # the Service of that name, its port `metrics`


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
