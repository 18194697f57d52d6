"""`python -m bench.hostile`: what hostile bodies and a heavy file config cost *other* requests.

Each scene runs a real `entra-webhook serve` over TLS and one "victim" client posting the typical
Pod back to back on a keep-alive connection; it reports the victim's latency alone and under load
from the same run, so the figures compare like with like on a noisy machine:

1. stall: two senders post ~3 MiB bodies of nested arrays (answered 400);
2. unknown identity: a config directory of 1,000 files, and another client naming an identity no
   file has (each denial may look for it);
3. reload: 10,000 identities in 1,000 files, one file rewritten every half second.

A report, never a test: nothing here fails on a slow figure.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.pod import EXAMPLES, review_body, typical_review
from bench.servers import Certs, free_port, make_certs, ours_command, serving
from bench.stats import median, percentile
from webhook.injector.sources.files import FileSource

MIB = 1024 * 1024
IDENTITY = """\
apiVersion: entra.io/v1alpha1
kind: AgentIdentity
metadata: {{name: {name}, namespace: agents}}
spec: {{blueprint: sales, clientId: f3897825-fd03-45f5-90eb-fdbf26135650}}
"""


def deep_body(size: int = 3 * MIB - 4096, depth: int = 1000) -> bytes:
    """Arrays nested `depth` deep, repeated to `size` bytes; no uid, so every server answers 400."""
    unit = b"[" * depth + b"]" * depth
    count = (size - 200) // (len(unit) + 1)
    deep = b"[" + b",".join([unit] * count) + b"]"
    return b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"deep":' + deep + b"}}"


def unknown_identity_body() -> bytes:
    review = typical_review()
    review["request"]["object"]["metadata"]["annotations"]["entra.io/agent-identity"] = "nobody-has-this"
    return json.dumps(review, separators=(",", ":")).encode()


class Client:
    """One keep-alive HTTPS connection; reconnects after an error."""

    def __init__(self, url: str, certs: Certs, timeout: float = 30) -> None:
        host, port = url.removeprefix("https://").split(":")
        self.address = (host, int(port))
        self.context = ssl.create_default_context(cafile=str(certs.ca))
        self.timeout = timeout
        self.connection: http.client.HTTPSConnection | None = None

    def post(self, body: bytes) -> tuple[int, float]:
        started = time.perf_counter()
        try:
            if self.connection is None:
                self.connection = http.client.HTTPSConnection(*self.address, context=self.context, timeout=self.timeout)
            self.connection.request("POST", "/mutate", body, {"Content-Type": "application/json"})
            response = self.connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            self.close()
            status = 0
        return status, time.perf_counter() - started

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, status: int, seconds: float) -> None:
        self.seconds.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def line(self, label: str, duration: float) -> str:
        ms = [value * 1000 for value in self.seconds]
        return (
            f"  {label:<44} {len(ms):>6} req {len(ms) / duration:>7.1f}/s  p50 {median(ms):>7.2f} ms  "
            f"p99 {percentile(ms, 99):>8.2f} ms  max {max(ms, default=0):>8.2f} ms  statuses {self.statuses}"
        )


def _loop(client: Client, body: bytes, stop: threading.Event, into: Latencies) -> None:
    while not stop.is_set():
        into.add(*client.post(body))


@contextlib.contextmanager
def background(count: int, make: Callable[[], Client], body: bytes) -> Iterator[Latencies]:
    """`count` clients posting `body` back to back until the block ends."""
    stop = threading.Event()
    seen = Latencies()
    clients = [make() for _ in range(count)]
    threads = [threading.Thread(target=_loop, args=(client, body, stop, seen), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        for client in clients:
            client.close()


def victim(client: Client, seconds: float, during: Callable[[], None] | None = None) -> Latencies:
    seen = Latencies()
    body = review_body()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(*client.post(body))
        if during is not None:
            during()
    return seen


def _config_dir(root: Path, files: int, per_file: int) -> Path:
    root.mkdir(parents=True)
    (root / "blueprints.yaml").write_text((EXAMPLES / "blueprints.yaml").read_text())
    (root / "identities.yaml").write_text((EXAMPLES / "identities.yaml").read_text())
    for number in range(files):
        text = "---\n".join(IDENTITY.format(name=f"id-{number:05d}-{item}") for item in range(per_file))
        (root / f"ids-{number:05d}.yaml").write_text(text)
    return root


def scene_stall(certs: Certs, workdir: Path, seconds: float) -> list[str]:
    body = deep_body()
    port = free_port()
    with serving("stall", ours_command(certs, port), certs, port, workdir) as server:
        make = functools.partial(Client, server.url, certs)
        alone = victim(make(), seconds)
        with background(2, make, body) as senders:
            loaded = victim(make(), seconds)
    return [
        f"1. stall: victim posts the typical Pod; 2 senders post {len(body) / MIB:.2f} MiB of arrays nested 1000 deep",
        alone.line("victim alone", seconds),
        loaded.line("victim while 2 senders post deep bodies", seconds),
        senders.line("the deep bodies themselves", seconds),
    ]


def scene_unknown(certs: Certs, workdir: Path, seconds: float) -> list[str]:
    config = _config_dir(workdir / "config-1000", files=1000, per_file=1)
    port = free_port()
    with serving("unknown", ours_command(certs, port, config), certs, port, workdir) as server:
        make = functools.partial(Client, server.url, certs)
        alone = victim(make(), seconds)
        body = unknown_identity_body()
        with background(1, make, body) as only_denials:
            time.sleep(seconds / 2)
        with background(1, make, body) as denying:
            loaded = victim(make(), seconds)
    return [
        "2. unknown identity, config of 1,000 files (1 identity each)",
        alone.line("victim alone", seconds),
        only_denials.line("unknown-identity denials, one client alone", seconds / 2),
        loaded.line("victim while another client names unknown ones", seconds),
        denying.line("those denials", seconds),
    ]


def scene_reload(certs: Certs, workdir: Path, seconds: float) -> list[str]:
    config = _config_dir(workdir / "config-10000", files=1000, per_file=10)
    started = time.perf_counter()
    FileSource([config]).load()
    full_load = time.perf_counter() - started
    port = free_port()
    with serving("reload", ours_command(certs, port, config), certs, port, workdir) as server:
        make = functools.partial(Client, server.url, certs)
        alone = victim(make(), seconds)
        target = config / "ids-00000.yaml"
        last = [0.0]
        edits = [0]

        def edit() -> None:
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                edits[0] += 1
                target.write_text(IDENTITY.format(name=f"id-00000-edit-{edits[0]}"))
                stat = target.stat()
                os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + edits[0] * 10_000_000))

        loaded = victim(make(), seconds, during=edit)
    return [
        f"3. reload: 10,000 identities in 1,000 files; a full load in-process takes {full_load * 1000:.0f} ms",
        alone.line("victim alone", seconds),
        loaded.line(f"victim while one file changes every 0.5 s ({edits[0]} edits)", seconds),
    ]


SCENES = {"stall": scene_stall, "unknown": scene_unknown, "reload": scene_reload}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="per measurement")
    parser.add_argument("--only", choices=sorted(SCENES), action="append", help="run these scenes only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as temp:
        workdir = Path(temp)
        certs = make_certs(workdir / "certs")
        for name in args.only or list(SCENES):
            print("\n".join(SCENES[name](certs, workdir, args.seconds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
