"""The controller's Prometheus metrics: reconciles, Graph calls, tokens, leadership, identities, watches.

A registry of our own, as in the webhook (`webhook/injector/metrics.py`); the other modules report through
plain callbacks, so none of them imports prometheus_client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

GRAPH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Counts = Mapping[tuple[str, str], int]


class _Identities(Collector):
    """Managed AgentIdentities by their Ready condition, counted from the controller's cache at scrape time."""

    def __init__(self, counts: Callable[[], Counts]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "entra_controller_agent_identities",
            "Managed AgentIdentities by Ready condition status and reason (NotReported: no condition yet).",
            labels=["ready", "reason"],
        )
        for (ready, reason), count in sorted(self.counts().items()):
            family.add_metric([ready, reason], count)
        yield family


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "entra_controller_reconciles",
            "Reconciles by kind, result (success, retry, error) and reason (a condition reason, or what was done).",
            ["kind", "result", "reason"],
            registry=self.registry,
        )
        self.graph_requests = Counter(
            "entra_controller_graph_requests",
            "Microsoft Graph HTTP requests by method and status code (error: no answer).",
            ["method", "status"],
            registry=self.registry,
        )
        self.graph_latency = Histogram(
            "entra_controller_graph_request_duration_seconds",
            "Time of one Microsoft Graph HTTP request, by method.",
            ["method"],
            buckets=GRAPH_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "entra_controller_token_acquisitions",
            "Graph tokens for blueprints by result (issued, cached, refused, unreachable).",
            ["result"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "entra_controller_leader", "1 while this replica holds the Lease and reconciles, else 0.",
            registry=self.registry,
        )  # fmt: skip
        self.watch_restarts = Counter(
            "entra_controller_watch_restarts",
            "Restarts of a watch, by resource and reason (gone: re-listed after 410; error: reconnected).",
            ["resource", "reason"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "entra_controller_queue_depth", "Keys waiting in the work queue (due now or later).",
            registry=self.registry,
        )  # fmt: skip

    def reconciled(self, kind: str, result: str, reason: str) -> None:
        self.reconciles.labels(kind, result, reason).inc()

    def graph_request(self, method: str, status: str, seconds: float) -> None:
        self.graph_requests.labels(method, status).inc()
        self.graph_latency.labels(method).observe(seconds)

    def token(self, result: str) -> None:
        self.tokens.labels(result).inc()

    def leading(self, leads: bool) -> None:
        self.leader.set(1 if leads else 0)

    def watch_restarted(self, resource: str, reason: str) -> None:
        self.watch_restarts.labels(resource, reason).inc()

    def follow(self, identities: Callable[[], Counts], queue_depth: Callable[[], int]) -> None:
        """Read what the loop holds at scrape time."""
        self.registry.register(_Identities(identities))
        self.queue_depth.set_function(queue_depth)
