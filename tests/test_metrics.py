"""The admission latency histogram: lock-free, and exposed exactly as prometheus_client's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from webhook.injector.metrics import LATENCY_BUCKETS, LatencyHistogram


def exposition(registry: CollectorRegistry) -> list[str]:
    """The text a scrape gets, without the creation time's value (the two were made a moment apart)."""
    return [line for line in generate_latest(registry).decode().splitlines() if not line.startswith("x_created")]


def test_the_histogram_exposes_what_prometheus_client_s_histogram_exposes_for_the_same_observations() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("x", "Latency.", buckets=LATENCY_BUCKETS, registry=theirs)
    histogram = LatencyHistogram("x", "Latency.", LATENCY_BUCKETS)
    ours.register(histogram)
    for seconds in (0.00005, 0.0001, 0.0001000001, 0.0003, 0.002, 0.25, 2.5, 3.0, 0.0):
        reference.observe(seconds)
        histogram.observe(seconds)
    assert exposition(ours) == exposition(theirs)
    assert 'x_bucket{le="0.0001"} 3.0' in exposition(ours)  # le: at most the bound
    assert 'x_bucket{le="+Inf"} 9.0' in exposition(ours)
    assert any(line.startswith("x_created ") for line in generate_latest(ours).decode().splitlines())
