"""The printed table and `bench/results/latest.json`: medians and ratios to read, raw samples to keep."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import baseline_app, large, obvious
from bench.core import DECIDE_AIM_NS, REQUEST_AIM_NS, STAGE, CoreResult
from bench.load import LoadResult, Sample
from bench.stats import ratio

HTTP_AIM = 0.8
P99_AIM = 1.5  # ours/baseline p99 under 8 connections
RESULTS = Path(__file__).resolve().parent / "results"


def _met(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def _num(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def header(env: dict[str, Any], mode: str) -> list[str]:
    return [
        f"entra-webhook bench ({mode}) | Python {env['python']} ({env['implementation']}) | "
        f"CPU {env['cpu_model']} | CPUs {env['cpus']}",
        "Figures are medians; ratios are ours/baseline, both measured in this same run. A report, not a test.",
    ]


def core_lines(result: CoreResult, batches: int, batch_ms: float) -> list[str]:
    base = result.get(result.baseline_key).median_ns
    decide = result.get("decide").median_ns
    sizes = result.sizes
    lines = [
        "",
        "(a) Core, per typical Pod (ReplicaSet-made, 2 app containers, identity sales-agent, namespace agents)",
        f"    {batches} interleaved batches per case of ~{batch_ms:g} ms; a sample = batch time / calls in it;",
        "    ratio = median time ours/baseline (lower is better)",
        f"  {'case':<22}{'median µs':>11}{'p90 µs':>9}{'ratio':>8}{'peak B/call':>13}{'result B':>10}",
    ]
    for case in result.main:
        lines.append(
            f"  {case.case.label:<22}{_num(case.median_ns / 1e3):>11}{_num(case.p90_ns / 1e3):>9}"
            f"{_num(ratio(case.median_ns, base), 3):>8}{_num(case.median_peak, 0):>13}{_num(case.result_bytes, 0):>10}"
        )
    request = result.get("request").median_ns
    large_ratio = ratio(result.get("decide-large").median_ns, decide)
    each_ratio = ratio(result.get("decide-each").median_ns, decide)
    lines += [
        f"  aim: decide with 10,000 identities within 10% of the small config: "
        f"{_met(max(large_ratio, each_ratio) <= 1.10)} (typical Pod {_num(large_ratio, 3)}x; "
        f"each identity in turn {_num(each_ratio, 3)}x)",
        f"  aim: decide <= {DECIDE_AIM_NS / 1e3:g} µs per typical Pod: {_met(decide <= DECIDE_AIM_NS)} "
        f"({_num(decide / 1e3)} µs)",
        f"  aim: request without HTTP <= {REQUEST_AIM_NS / 1e3:g} µs: {_met(request <= REQUEST_AIM_NS)} "
        f"({_num(request / 1e3)} µs)",
        f"  sizes: our patch {sizes.ops} ops, {sizes.ops_json_bytes:,} B JSON, {sizes.ops_base64_bytes:,} B base64; "
        f"request {sizes.review_bytes:,} B; baseline make_patch {sizes.baseline_ops} ops, "
        f"{sizes.baseline_patch_json_bytes:,} B JSON",
        f"  render cache with every one of the 10,000 identities rendered: {sizes.large_cache_entries:,} entries, "
        f"{_num(sizes.large_cache_bytes / 2**20)} MiB (tracemalloc)",
        "  peak B/call = tracemalloc peak above the start of one call, earlier results kept alive;",
        "  result B = what one call's result keeps alive (kept list slots included).",
    ]
    lines += [f"  {case.case.label}: {case.case.description}" for case in result.main]
    return lines


def stage_lines(result: CoreResult) -> list[str]:
    """The stage budget: each stage's median, and its share of the whole served path without the socket."""
    whole = result.get(STAGE + "whole").median_ns
    lines = [
        "",
        "(c) Stage budget of one request (typical Pod), each stage timed alone in the same interleaved batches;",
        "    HTTP and TLS are not in it: they cost what the baseline server costs in (b)",
        f"  {'stage':<18}{'median µs':>11}{'p90 µs':>9}{'share':>8}  what",
    ]
    for case in result.stages:
        share = "" if case.case.key == STAGE + "whole" else f"{case.median_ns / whole:.0%}"
        lines.append(
            f"  {case.case.label:<18}{_num(case.median_ns / 1e3):>11}{_num(case.p90_ns / 1e3):>9}{share:>8}  "
            f"{case.case.description}"
        )
    parts = [case.median_ns for case in result.stages if case.case.key not in {STAGE + k for k in _INSIDE}]
    lines.append(
        f"  sum of the stages (shape check and budget counted inside decide): {_num(sum(parts) / 1e3)} µs; "
        f"whole: {_num(whole / 1e3)} µs"
    )
    return lines


_INSIDE = ("shape", "budget", "whole")  # timed alone too, but part of another stage


def _pin_text(result: LoadResult) -> str:
    if not result.wrk_pin:
        return "not pinned (no taskset or fewer than 2 CPUs)"
    return f"taskset: wrk on CPU {result.wrk_pin[-1]}, server on CPU {result.server_pin[-1]}"


SERVERS = ("ours", "baseline", "floor", "ours-large")
LARGE_RSS_AIM_MIB = 150
LARGE_READY_AIM_S = 5.0
LARGE_SLOWDOWN_AIM = 1.10


def load_lines(result: LoadResult) -> list[str]:
    rounds = len(result.of("ours"))
    lines = [
        "",
        "(b) HTTP: POST /mutate (the typical Pod's AdmissionReview) over TLS keep-alive",
        f"    wrk -t{result.threads} -c{result.connections} -d{result.seconds:g}s after a {result.warmup_seconds:g}s "
        f"warm-up, fresh server per run, {rounds} round{'s' if rounds != 1 else ''} each, "
        f"interleaved; {_pin_text(result)}",
        "    ours-large: the same server with the generated configuration of "
        f"{large.NAMESPACES * large.IDENTITIES_PER_NAMESPACE:,} AgentIdentities in {large.NAMESPACES:,} namespaces "
        f"({large.NAMESPACES:,} blueprints), posted the typical review for each identity in turn",
        f"  {'server':<12}{'req/s':>10}{'µs/req':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'RSS MiB':>9}{'HWM MiB':>9}{'ready s':>9}",
    ]
    for server in SERVERS:
        lines.append(
            f"  {server:<12}{_num(_rps(result, server), 0):>10}{_num(1e6 / _rps(result, server)):>9}"
            f"{_num(result.median_of(server, lambda s: s.run.p50_us) / 1e3, 2):>9}"
            f"{_num(result.median_of(server, lambda s: s.run.p99_us) / 1e3, 2):>9}"
            f"{_num(result.median_of(server, lambda s: s.memory_kib['VmRSS']) / 1024):>9}"
            f"{_num(result.median_of(server, lambda s: s.memory_kib['VmHWM']) / 1024):>9}"
            f"{_num(result.median_of(server, lambda s: s.ready_seconds), 2):>9}"
        )
    aims = load_aims(result)
    lines += [
        "  ready s = from spawning the process (imports included) to the first GET /readyz = 200",
        f"  req/s per round: {'; '.join(f'{server} {_rounds(result.of(server))}' for server in SERVERS)}",
        f"  baseline: {baseline_app.DESCRIPTION}",
        f"  floor: {baseline_app.PARSED_DESCRIPTION}: no webhook that reads the Pod safely on this stack gets past "
        f"its ratio to the baseline, {_num(aims['floor_ratio'], 2)}",
        "  aims (ratios of medians from this run):",
        f"    served req/s ours/baseline >= {HTTP_AIM:g}: {_met(aims['rps_met'])} ({_num(aims['rps_ratio'], 2)})",
        f"    p99 ours/baseline <= {P99_AIM:g}: {_met(aims['p99_met'])} ({_num(aims['p99_ratio'], 2)})",
        f"    large config RSS <= {LARGE_RSS_AIM_MIB} MiB: {_met(aims['large_rss_met'])} "
        f"({_num(aims['large_rss_mib'])} MiB, HWM {_num(aims['large_hwm_mib'])} MiB)",
        f"    large config start-up <= {LARGE_READY_AIM_S:g} s: {_met(aims['large_ready_met'])} "
        f"({_num(aims['large_ready_s'], 2)} s; the small config: {_num(aims['small_ready_s'], 2)} s)",
        f"    large config time per request within {LARGE_SLOWDOWN_AIM - 1:.0%} of the small: "
        f"{_met(aims['large_slowdown_met'])} (large/small {_num(aims['large_slowdown'], 3)})",
    ]
    return lines


def _rps(result: LoadResult, server: str) -> float:
    return result.median_of(server, lambda s: s.run.rps)


def load_aims(result: LoadResult) -> dict[str, Any]:
    rps = http_ratio(result)
    floor = ratio(_rps(result, "floor"), _rps(result, "baseline"))
    p99 = ratio(result.median_of("ours", lambda s: s.run.p99_us), result.median_of("baseline", lambda s: s.run.p99_us))
    rss = result.median_of("ours-large", lambda s: s.memory_kib["VmRSS"]) / 1024
    hwm = result.median_of("ours-large", lambda s: s.memory_kib["VmHWM"]) / 1024
    ready = result.median_of("ours-large", lambda s: s.ready_seconds)
    slowdown = ratio(_rps(result, "ours"), _rps(result, "ours-large"))
    return {
        "rps_ratio": rps,
        "rps_met": rps >= HTTP_AIM,
        "floor_ratio": floor,
        "p99_ratio": p99,
        "p99_met": p99 <= P99_AIM,
        "large_rss_mib": rss,
        "large_hwm_mib": hwm,
        "large_rss_met": max(rss, hwm) <= LARGE_RSS_AIM_MIB,
        "large_ready_s": ready,
        "small_ready_s": result.median_of("ours", lambda s: s.ready_seconds),
        "large_ready_met": ready <= LARGE_READY_AIM_S,
        "large_slowdown": slowdown,
        "large_slowdown_met": slowdown <= LARGE_SLOWDOWN_AIM,
    }


def _rounds(samples: list[Sample]) -> str:
    return ", ".join(f"{sample.run.rps:,.0f}" for sample in samples)


def http_ratio(result: LoadResult) -> float:
    return ratio(result.median_of("ours", lambda s: s.run.rps), result.median_of("baseline", lambda s: s.run.rps))


def core_json(result: CoreResult, batches: int, batch_ms: float, memory_calls: int) -> dict[str, Any]:
    base = result.get(result.baseline_key).median_ns
    return {
        "settings": {"batches": batches, "batch_ms": batch_ms, "memory_calls": memory_calls},
        "aims": {
            "decide_ns": DECIDE_AIM_NS,
            "decide_met": result.get("decide").median_ns <= DECIDE_AIM_NS,
            "request_ns": REQUEST_AIM_NS,
            "request_met": result.get("request").median_ns <= REQUEST_AIM_NS,
        },
        "baseline": obvious.DESCRIPTION,
        "sizes": asdict(result.sizes),
        "cases": {
            case.case.key: {
                "label": case.case.label,
                "description": case.case.description,
                "batch_size": case.batch_size,
                "median_ns": case.median_ns,
                "p90_ns": case.p90_ns,
                "ratio_vs_baseline": ratio(case.median_ns, base),
                "median_peak_bytes": case.median_peak,
                "result_bytes": case.result_bytes,
                "per_call_ns": case.per_call_ns,
                "peak_bytes": case.peak_bytes,
            }
            for case in result.cases
        },
    }


def load_json(result: LoadResult) -> dict[str, Any]:
    rps = http_ratio(result)
    return {
        "settings": {
            "threads": result.threads,
            "connections": result.connections,
            "seconds": result.seconds,
            "warmup_seconds": result.warmup_seconds,
            "wrk_pin": result.wrk_pin,
            "server_pin": result.server_pin,
        },
        "baseline": baseline_app.DESCRIPTION,
        "ratio_rps": rps,
        "medians": {
            server: {
                "rps": result.median_of(server, lambda s: s.run.rps),
                "p50_us": result.median_of(server, lambda s: s.run.p50_us),
                "p99_us": result.median_of(server, lambda s: s.run.p99_us),
                "rss_kib": result.median_of(server, lambda s: s.memory_kib["VmRSS"]),
                "hwm_kib": result.median_of(server, lambda s: s.memory_kib["VmHWM"]),
                "ready_seconds": result.median_of(server, lambda s: s.ready_seconds),
            }
            for server in SERVERS
        },
        "aims": load_aims(result),
        "samples": [
            {
                "server": sample.server,
                "round": sample.round,
                "warmup": sample.warmup.as_json(),
                "run": sample.run.as_json(),
                "memory_kib": sample.memory_kib,
                "ready_seconds": sample.ready_seconds,
            }
            for sample in result.samples
        ],
    }


def write(document: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "latest.json"
    path.write_text(json.dumps(_finite(document), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _finite(value: Any) -> Any:
    """NaN is not JSON: a ratio or median with nothing to divide or sort is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
