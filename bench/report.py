"""The printed table and `bench/results/latest.json`: medians and ratios to read, raw samples to keep."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import baseline_app, obvious
from bench.core import AIM_NS, CoreResult
from bench.load import LoadResult, Sample
from bench.stats import ratio

HTTP_AIM = 0.8
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
    for case in result.cases:
        lines.append(
            f"  {case.case.label:<22}{_num(case.median_ns / 1e3):>11}{_num(case.p90_ns / 1e3):>9}"
            f"{_num(ratio(case.median_ns, base), 3):>8}{_num(case.median_peak, 0):>13}{_num(case.result_bytes, 0):>10}"
        )
    lines += [
        f"  aim: ours decide <= {AIM_NS / 1e3:g} µs per Pod: {_met(decide <= AIM_NS)} ({_num(decide / 1e3)} µs)",
        f"  sizes: our patch {sizes.ops} ops, {sizes.ops_json_bytes:,} B JSON, {sizes.ops_base64_bytes:,} B base64; "
        f"request {sizes.review_bytes:,} B; baseline make_patch {sizes.baseline_ops} ops, "
        f"{sizes.baseline_patch_json_bytes:,} B JSON",
        "  peak B/call = tracemalloc peak above the start of one call, earlier results kept alive;",
        "  result B = what one call's result keeps alive (kept list slots included).",
    ]
    lines += [f"  {case.case.label}: {case.case.description}" for case in result.cases]
    return lines


def _pin_text(result: LoadResult) -> str:
    if not result.wrk_pin:
        return "not pinned (no taskset or fewer than 2 CPUs)"
    return f"taskset: wrk on CPU {result.wrk_pin[-1]}, server on CPU {result.server_pin[-1]}"


def load_lines(result: LoadResult) -> list[str]:
    rounds = len(result.of("ours"))
    lines = [
        "",
        "(b) HTTP: POST /mutate (the typical Pod's AdmissionReview) over TLS keep-alive",
        f"    wrk -t{result.threads} -c{result.connections} -d{result.seconds:g}s after a {result.warmup_seconds:g}s "
        f"warm-up, fresh server per run, {rounds} round{'s' if rounds != 1 else ''} each, "
        f"interleaved; {_pin_text(result)}",
        f"  {'server':<10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'RSS MiB':>9}{'HWM MiB':>9}",
    ]
    for server in ("ours", "baseline"):
        lines.append(
            f"  {server:<10}{_num(result.median_of(server, lambda s: s.run.rps), 0):>10}"
            f"{_num(result.median_of(server, lambda s: s.run.p50_us) / 1e3, 2):>9}"
            f"{_num(result.median_of(server, lambda s: s.run.p99_us) / 1e3, 2):>9}"
            f"{_num(result.median_of(server, lambda s: s.memory_kib['VmRSS']) / 1024):>9}"
            f"{_num(result.median_of(server, lambda s: s.memory_kib['VmHWM']) / 1024):>9}"
        )
    rps = http_ratio(result)
    per_request = [1e6 / result.median_of(server, lambda s: s.run.rps) for server in ("ours", "baseline")]
    lines += [
        f"  ratio ours/baseline req/s (higher is better): {_num(rps, 2)}; aim >= {HTTP_AIM:g}: {_met(rps >= HTTP_AIM)} "
        f"(1 core saturated, time per request: ours {_num(per_request[0])} µs, baseline {_num(per_request[1])} µs)",
        f"  req/s per round: ours {_rounds(result.of('ours'))}; baseline {_rounds(result.of('baseline'))}",
        f"  baseline: {baseline_app.DESCRIPTION}",
    ]
    return lines


def _rounds(samples: list[Sample]) -> str:
    return ", ".join(f"{sample.run.rps:,.0f}" for sample in samples)


def http_ratio(result: LoadResult) -> float:
    return ratio(result.median_of("ours", lambda s: s.run.rps), result.median_of("baseline", lambda s: s.run.rps))


def core_json(result: CoreResult, batches: int, batch_ms: float, memory_calls: int) -> dict[str, Any]:
    base = result.get(result.baseline_key).median_ns
    return {
        "settings": {"batches": batches, "batch_ms": batch_ms, "memory_calls": memory_calls},
        "aim_ns": AIM_NS,
        "aim_met": result.get("decide").median_ns <= AIM_NS,
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
            }
            for server in ("ours", "baseline")
        },
        "aim": HTTP_AIM,
        "aim_met": rps >= HTTP_AIM,
        "samples": [
            {
                "server": sample.server,
                "round": sample.round,
                "warmup": sample.warmup.as_json(),
                "run": sample.run.as_json(),
                "memory_kib": sample.memory_kib,
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
