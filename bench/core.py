"""(a) The pure core per typical Pod: `decide` alone, with its encoding, and against the baseline.

Cases run in interleaved batches (rotating order), so a noisy neighbour slows every case alike
and the ratios stay meaningful; each sample is one batch's time divided by its calls.
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import itertools
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonpatch
import orjson

from bench import large, obvious, stages
from bench.case import Case
from bench.pod import EXAMPLES, NAMESPACE, review_body, typical_pod
from bench.stats import median, percentile
from webhook.core.decision import Inject, decide
from webhook.core.rendered import Rendered
from webhook.core.review import answer, parse_review
from webhook.core.settings import Settings
from webhook.injector.sources.files import FileSource

DECIDE_AIM_NS = 15_000
REQUEST_AIM_NS = 40_000
STAGE = "stage:"  # key prefix of the stage cases (bench.stages)


@dataclass(slots=True)
class CaseResult:
    case: Case
    batch_size: int = 0
    per_call_ns: list[float] = field(default_factory=list)
    peak_bytes: list[int] = field(default_factory=list)
    result_bytes: float = 0.0

    @property
    def median_ns(self) -> float:
        return median(self.per_call_ns)

    @property
    def p90_ns(self) -> float:
        return percentile(self.per_call_ns, 90)

    @property
    def median_peak(self) -> float:
        return median(self.peak_bytes)


@dataclass(frozen=True, slots=True)
class Sizes:
    ops: int
    ops_json_bytes: int
    ops_base64_bytes: int
    review_bytes: int
    baseline_ops: int
    baseline_patch_json_bytes: int
    large_cache_entries: int = 0
    large_cache_bytes: int = 0  # the render cache with every one of the 10,000 identities rendered


@dataclass(frozen=True, slots=True)
class CoreResult:
    cases: list[CaseResult]
    sizes: Sizes
    baseline_key: str = "baseline"

    def get(self, key: str) -> CaseResult:
        return next(result for result in self.cases if result.case.key == key)

    @property
    def main(self) -> list[CaseResult]:
        return [result for result in self.cases if not result.case.key.startswith(STAGE)]

    @property
    def stages(self) -> list[CaseResult]:
        return [result for result in self.cases if result.case.key.startswith(STAGE)]


def _compact(value: Any) -> bytes:
    """What the server sends: orjson, as in `webhook.injector.server`."""
    return orjson.dumps(value)


def build_cases() -> tuple[list[Case], Sizes]:
    """The cases, after checking that ours injects and the baseline yields the very same Pod."""
    index = FileSource([EXAMPLES]).load()
    settings = Settings()
    rendered = Rendered()
    pod = typical_pod()
    body = review_body()
    request = parse_review(body)
    admission = stages.served_admission(index, settings, stages.null_stream())
    outcome = decide(pod, NAMESPACE, index, settings)
    if not isinstance(outcome, Inject):
        raise RuntimeError(f"the typical Pod was not injected: {outcome}")
    parts = obvious.parts_from_ops(outcome.ops)
    ours_pod = jsonpatch.apply_patch(pod, outcome.ops)
    if obvious.inject(pod, parts) != ours_pod:
        raise RuntimeError("the baseline's injected Pod differs from the one our ops produce")
    baseline_ops = obvious.mutate(pod, parts)
    if jsonpatch.apply_patch(pod, baseline_ops) != ours_pod:
        raise RuntimeError("the baseline's patch does not produce our injected Pod")

    def ours() -> object:
        return decide(pod, NAMESPACE, index, settings, rendered=rendered)

    def encoded() -> object:
        return answer(request, decide(pod, NAMESPACE, index, settings, rendered=rendered))

    def whole() -> object:
        return _compact(stages.run_now(admission.review(parse_review(body))))

    if whole() != _compact(answer(request, outcome)):
        raise RuntimeError("the request case answered differently from decide + answer")

    def baseline() -> object:
        return obvious.mutate(pod, parts)

    ops_json = _compact(outcome.ops)
    sizes = Sizes(
        ops=len(outcome.ops),
        ops_json_bytes=len(ops_json),
        ops_base64_bytes=len(base64.b64encode(ops_json)),
        review_bytes=len(body),
        baseline_ops=len(baseline_ops),
        baseline_patch_json_bytes=len(_compact(baseline_ops)),
    )
    cases = [
        Case(
            "decide",
            "ours: decide",
            "decide(pod, 'agents', index, settings, rendered=cache), as the server calls it",
            ours,
        ),
        Case(
            "decide+encode",
            "ours: decide+encode",
            "decide + review.answer: orjson.dumps(ops) + base64 into the response dict (the server's per-Pod work)",
            encoded,
        ),
        Case(
            "request",
            "ours: request, no HTTP",
            "parse_review(body) + Admission.review (decide, answer, log line, metrics, Events) + orjson.dumps: "
            "all our work per request; only starlette/uvicorn/TLS (what the baseline server also does) left out",
            whole,
        ),
        Case("baseline", "baseline: obvious", obvious.DESCRIPTION, baseline),
    ]
    large_cases, entries, cache_bytes = _large_cases(pod, settings, outcome)
    cases += large_cases
    sizes = dataclasses.replace(sizes, large_cache_entries=entries, large_cache_bytes=cache_bytes)
    cases += [dataclasses.replace(stage, key=STAGE + stage.key) for stage in stages.build_stages()]
    return cases, sizes


def _large_cases(pod: dict[str, Any], settings: Settings, small: Inject) -> tuple[list[Case], int, int]:
    """decide with the generated configuration of 10,000 identities: the typical Pod (same answer as with
    the small one), and a Pod for each of the 10,000 identities in turn (every one rendered and cached)."""
    with tempfile.TemporaryDirectory(prefix="entra-bench-large-") as temp:
        index, _ = large.load(large.write_config(Path(temp)))
    large.check(index)
    rendered, everyone = Rendered(), Rendered()
    outcome = decide(pod, NAMESPACE, index, settings, rendered=rendered)
    if not isinstance(outcome, Inject) or outcome.patch != small.patch:
        raise RuntimeError("the large configuration answers the typical Pod differently from the small one")
    pods = large.pods(pod)
    turn = itertools.cycle(pods)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for namespace, each in pods:  # all rendered once: the cache at its size with every identity in use
            if not isinstance(decide(each, namespace, index, settings, rendered=everyone), Inject):
                raise RuntimeError(f"a generated Pod in {namespace} was not injected")
        cache_bytes = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    def typical() -> object:
        return decide(pod, NAMESPACE, index, settings, rendered=rendered)

    def in_turn() -> object:
        namespace, each = next(turn)
        return decide(each, namespace, index, settings, rendered=everyone)

    cases = [
        Case("decide-large", "decide, 10k config", "decide on the typical Pod with 10,000 identities loaded", typical),
        Case(
            "decide-each",
            "decide, 10k in turn",
            f"decide on {len(pods):,} Pods naming each identity in turn (one render-cache entry each)",
            in_turn,
        ),
    ]
    return cases, len(everyone), cache_bytes


def _batch(call: Callable[[], object], size: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(size):
        call()
    return (time.perf_counter_ns() - start) / size


def _batch_size(call: Callable[[], object], target_ns: int) -> int:
    """Calls per batch so one batch takes about `target_ns`; also serves as the warm-up."""
    size, spent = 1, 0.0
    while size * spent < target_ns / 2:
        spent = _batch(call, size)
        size *= 2
    return max(1, round(target_ns / spent))


def _memory(call: Callable[[], object], calls: int) -> tuple[list[int], float]:
    """Per call, the tracemalloc peak above its start; and the bytes one result keeps alive.

    Results stay referenced until the end, so a call cannot reuse its predecessor's freed objects
    from CPython's free lists and hide them from tracemalloc.
    """
    peaks: list[int] = []
    kept: list[object] = []
    tracemalloc.start()
    try:
        call()
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            kept.append(call())
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
        retained = (tracemalloc.get_traced_memory()[0] - start) / calls
    finally:
        tracemalloc.stop()
    kept.clear()
    return peaks, retained


def run(batches: int, batch_ms: float, memory_calls: int) -> CoreResult:
    """On one CPU (the server's in the HTTP part): a process free to move between cores measured
    the same code up to 1.8x apart from one run to the next on this kind of machine."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(allowed)})
    try:
        return _run(batches, batch_ms, memory_calls)
    finally:
        os.sched_setaffinity(0, allowed)


def _run(batches: int, batch_ms: float, memory_calls: int) -> CoreResult:
    cases, sizes = build_cases()
    results = [CaseResult(case) for case in cases]
    for result in results:
        result.batch_size = _batch_size(result.case.call, int(batch_ms * 1e6))
    gc.collect()
    for round_ in range(batches):
        shift = round_ % len(results)
        for result in results[shift:] + results[:shift]:
            result.per_call_ns.append(_batch(result.case.call, result.batch_size))
    for result in results:
        result.peak_bytes, result.result_bytes = _memory(result.case.call, memory_calls)
    return CoreResult(results, sizes)
