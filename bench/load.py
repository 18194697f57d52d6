"""(b) AdmissionReviews per second over TLS keep-alive: ours and the baseline, interleaved rounds.

Each round starts a fresh server, checks it answers correctly, warms it up, then measures, so
both servers see the same machine conditions in turn and no state carries across rounds.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import baseline_app, large, servers, wrk
from bench.pod import review_body, typical_review
from bench.stats import median

Command = Callable[[servers.Certs, int], list[str]]


@dataclass(frozen=True, slots=True)
class Sample:
    server: str
    round: int
    warmup: wrk.WrkRun
    run: wrk.WrkRun
    memory_kib: dict[str, int]
    ready_seconds: float


@dataclass(slots=True)
class LoadResult:
    threads: int
    connections: int
    seconds: float
    warmup_seconds: float
    wrk_pin: list[str]
    server_pin: list[str]
    samples: list[Sample] = field(default_factory=list)

    def of(self, server: str) -> list[Sample]:
        return [sample for sample in self.samples if sample.server == server]

    def median_of(self, server: str, pick: Callable[[Sample], float]) -> float:
        return median([pick(sample) for sample in self.of(server)])


def _check(name: str, certs: servers.Certs, url: str, body: bytes) -> None:
    """Measure only a server that answers right: ours must inject, the baseline must answer 200."""
    status, reply = servers.https(certs, url + "/mutate", body)
    if status != 200:
        raise RuntimeError(f"{name}: POST /mutate answered {status}: {reply[:300]!r}")
    if not name.startswith("ours"):
        return
    response: dict[str, Any] = json.loads(reply)["response"]
    if response.get("patchType") != "JSONPatch" or not response.get("allowed"):
        raise RuntimeError(f"ours did not inject the typical Pod: {response}")
    expected = json.loads(baseline_app.FIXED)["response"]["patch"]
    if base64.b64decode(response["patch"]) != base64.b64decode(expected):
        raise RuntimeError("ours answered a different patch than decide gives for the typical Pod")


def _measure(
    name: str, command: Command, round_: int, result: LoadResult, certs: servers.Certs, script: Path, workdir: Path
) -> Sample:
    """One server's round; up to two retries on fresh ports when another process took ours first."""
    for _ in range(2):
        with contextlib.suppress(servers.PortTaken):
            return _measure_once(name, command, round_, result, certs, script, workdir)
    return _measure_once(name, command, round_, result, certs, script, workdir)


def _measure_once(
    name: str, command: Command, round_: int, result: LoadResult, certs: servers.Certs, script: Path, workdir: Path
) -> Sample:
    port = servers.free_port()
    argv = [*result.server_pin, *command(certs, port)]
    tool = wrk.ensure_wrk()
    body = review_body()
    with servers.serving(name, argv, certs, port, workdir) as running:
        _check(name, certs, running.url, body)
        url = running.url + "/mutate"
        options = (result.threads, result.connections, result.wrk_pin)
        warmup = wrk.run(tool, url, script, result.warmup_seconds, *options)
        measured = wrk.run(tool, url, script, result.seconds, *options)
        memory = servers.memory_kib(running.pid)
    for label, run in (("warm-up", warmup), ("measured", measured)):
        if run.errors or not run.requests:
            raise RuntimeError(f"{name} round {round_}: {label} wrk run had errors or no requests: {run}")
    return Sample(name, round_, warmup, measured, memory, running.ready_seconds)


def run(
    rounds: int,
    seconds: float,
    warmup_seconds: float,
    threads: int = 1,
    connections: int = 8,
    progress: Callable[[str], None] = lambda _: None,
) -> LoadResult:
    wrk.ensure_wrk()
    result = LoadResult(threads, connections, seconds, warmup_seconds, servers.pinning(0), servers.pinning(1))
    with tempfile.TemporaryDirectory(prefix="entra-bench-") as temp:
        workdir = Path(temp)
        certs = servers.make_certs(workdir / "certs")
        script = wrk.write_script(workdir, review_body())
        config = large.write_config(workdir / "large-config")
        # The large server gets every generated identity in turn: each rendered, the cache at its size.
        every_identity = wrk.write_rotating_script(workdir, large.reviews(typical_review()))
        commands: dict[str, tuple[Command, Path]] = {
            "ours": (servers.ours_command, script),
            "baseline": (servers.baseline_command, script),
            "floor": (functools.partial(servers.baseline_command, parse=True), script),
            "ours-large": (functools.partial(servers.ours_command, config=config), every_identity),
        }
        for round_ in range(rounds):
            for name, (command, posted) in commands.items():
                progress(f"http: round {round_ + 1}/{rounds}: {name}")
                result.samples.append(_measure(name, command, round_, result, certs, posted, workdir))
    return result
