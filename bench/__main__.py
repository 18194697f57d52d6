"""`make bench`: run the core and HTTP measurements, print the table, write the raw samples.

Exits non-zero only when something fails to run; slow figures are reported, never failed on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench import core, load, report, sysinfo
from bench import profile as sampling


@dataclass(frozen=True, slots=True)
class Profile:
    """How much to measure: `quick` is a ~20 s smoke run, `full` stays under ~3 minutes."""

    batches: int
    batch_ms: float
    memory_calls: int
    rounds: int
    seconds: float
    warmup_seconds: float
    profile_seconds: float


PROFILES = {
    "full": Profile(
        batches=101, batch_ms=20, memory_calls=51, rounds=3, seconds=10, warmup_seconds=3, profile_seconds=8
    ),
    "quick": Profile(batches=21, batch_ms=5, memory_calls=11, rounds=1, seconds=3, warmup_seconds=1, profile_seconds=3),
}


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def measure(mode: str, only: str | None) -> tuple[list[str], dict[str, Any]]:
    profile = PROFILES[mode]
    env = sysinfo.describe()
    lines = report.header(env, mode)
    document: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "env": env,
        "profile": {key: getattr(profile, key) for key in profile.__slots__},
    }
    if only in (None, "core"):
        _say("core: timing decide and the obvious baseline")
        result = core.run(profile.batches, profile.batch_ms, profile.memory_calls)
        lines += report.core_lines(result, profile.batches, profile.batch_ms)
        lines += report.stage_lines(result)
        document["core"] = report.core_json(result, profile.batches, profile.batch_ms, profile.memory_calls)
    if only in (None, "http"):
        _say(f"http: {profile.rounds} round(s) of ours and the baseline under wrk")
        loaded = load.run(profile.rounds, profile.seconds, profile.warmup_seconds, progress=_say)
        lines += report.load_lines(loaded)
        document["http"] = report.load_json(loaded)
    if only in (None, "profile"):
        _say(f"profile: py-spy on ours under wrk for {profile.profile_seconds:g}s")
        sampled = sampling.run(profile.profile_seconds)
        lines += sampling.lines(sampled)
        document["profile"] = {
            "samples": sampled.samples,
            "rps": sampled.rps,
            "self": dict(sampled.self_time.most_common(40)),
            "by_file": dict(sampled.by_file.most_common(40)),
        }
    return lines, document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations and short wrk runs (~20 s)")
    parser.add_argument("--only", choices=["core", "http", "profile"], help="run one part only")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        lines, document = measure("quick" if args.quick else "full", args.only)
    except Exception as error:
        traceback.print_exc()
        print(f"bench failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    document["elapsed_seconds"] = round(time.monotonic() - started, 1)
    path = report.write(document)
    print("\n".join(lines))
    print(f"\nraw samples: {path} ({document['elapsed_seconds']:g} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
