"""Prometheus metrics on their own plain-HTTP port: why Pods were (not) injected, and how fast.

A registry of our own, not the process-global one, so tests and several servers in one process
do not share counters.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from webhook.common.models import KINDS
from webhook.core.index import ConfigIndex
from webhook.injector.admission import Admitted
from webhook.injector.certs import expires_in

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5)


class Metrics:
    def __init__(self, index: Callable[[], ConfigIndex]) -> None:
        self.registry = CollectorRegistry()
        self.admissions = Counter(
            "entra_webhook_admissions",
            "Pod admissions by outcome (injected, skipped, denied, error) and reason.",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.latency = LatencyHistogram(
            "entra_webhook_admission_duration_seconds",
            "Time to decide one Pod admission, live lookups included.",
            LATENCY_BUCKETS,
        )
        self.registry.register(self.latency)
        self.config_objects = Gauge(
            "entra_webhook_config_objects",
            "AgentBlueprint and AgentIdentity objects in the webhook's cache (invalid ones included).",
            ["kind"],
            registry=self.registry,
        )
        for kind in KINDS:
            self.config_objects.labels(kind).set_function(lambda kind=kind: index().count(kind))  # type: ignore[misc]
        self.watch_restarts = Counter(
            "entra_webhook_watch_restarts",
            "Restarts of the config watch, by resource and reason (gone: re-listed after 410; error: reconnected).",
            ["resource", "reason"],
            registry=self.registry,
        )
        self.certificate_expiry = Gauge(
            "entra_webhook_certificate_expiry_seconds",
            "Seconds until the serving certificate expires.",
            registry=self.registry,
        )
        self.events = Counter(
            "entra_webhook_events",
            "Kubernetes Events about skipped and denied Pods, by result (sent, suppressed, dropped, failed).",
            ["result"],
            registry=self.registry,
        )
        self._not_after: float | None = None
        self.certificate_expiry.set_function(self._seconds_left)
        # Each (outcome, reason) child resolved once: `labels()` validates and locks on every call.
        self._admitted: dict[tuple[str, str], Counter] = {}

    def observe(self, admitted: Admitted) -> None:
        key = (admitted.outcome_name, admitted.reason)
        child = self._admitted.get(key)
        if child is None:
            child = self._admitted[key] = self.admissions.labels(*key)
        child.inc()
        self.latency.observe(admitted.micros / 1_000_000)

    def watch_restarted(self, resource: str, reason: str) -> None:
        self.watch_restarts.labels(resource, reason).inc()

    def certificate_loaded(self, cert_pem: bytes) -> None:
        self._not_after = time.time() + expires_in(cert_pem)

    def event_result(self, result: str) -> None:
        self.events.labels(result).inc()

    def _seconds_left(self) -> float:
        return (self._not_after - time.time()) if self._not_after is not None else float("nan")

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, host, registry=self.registry)


class LatencyHistogram(Collector):
    """A Prometheus histogram observed with no lock: one bucket count and the sum, on the event loop.

    prometheus_client's `Histogram` takes a lock for the sum and again for the bucket on every
    observation, to be safe from any thread. Admissions are observed on one thread only; a scrape
    (another thread) copies the counts, so it may see an observation in a bucket before its sum, as
    it may with prometheus_client's. The exposition is the same: `_bucket` by `le` (cumulative, up to
    `+Inf`), `_count`, `_sum` and `_created`.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, the last for what passes every bound
        self.sum = 0.0
        self.created = time.time()

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1  # the first bound >= seconds: `le`
        self.sum += seconds

    def collect(self) -> Iterator[Metric]:
        counts, total = list(self.counts), self.sum
        cumulative, buckets = 0, []
        for bound, count in zip((*map(floatToGoString, self.bounds), "+Inf"), counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        family = HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total)
        family.add_sample(self.name + "_created", {}, self.created)
        yield family
