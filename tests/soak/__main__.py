"""`make soak`: minutes of Pod creations through a real API server and the webhook, with everything moving.

A real control plane (tests/e2e/controlplane.py; the newest version in env K8S, default 1.36) and
`entra-webhook serve --kubeconfig`; concurrent creators POST Pods to the API server as fast as it
takes them, while
  - the serving certificate is renewed on disk every 20 s (the webhook reloads it),
  - the AgentIdentity and AgentBlueprint are edited every second,
  - the API server restarts once, a third of the way in.
Each creation must come back 201 with the sidecar and an agent identity id the CRs held. It prints
admissions, failures (during the restart, in the seconds after, and otherwise) and latencies, and
exits 1 if anything failed outside the restart. Not part of `make test`: it takes minutes.

    SOAK_SECONDS=300 SOAK_CREATORS=16 K8S=1.36 python -m tests.soak
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.conftest import apply, apply_crds, example_config, opt_in, webhook_configuration
from tests.e2e.controlplane import VERSIONS, ControlPlane, build_binaries, start_control_plane
from tests.servers import serve
from webhook.core.settings import Settings
from webhook.injector.certs import make_ca, make_serving, write_bundle

NAMESPACE = "soak"
IDENTITY_IDS = ("f3897825-fd03-45f5-90eb-fdbf26135650", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
SETTLE_SECONDS = 5.0  # after the API server is ready again: its webhook and CR caches still filling


@dataclass(frozen=True, slots=True)
class Attempt:
    at: float  # seconds since the start, when sent
    seconds: float
    ok: bool
    problem: str


@dataclass
class Clock:
    started: float = field(default_factory=time.monotonic)
    restart: tuple[float, float] | None = None  # when the API server went down, and when it was ready again

    def now(self) -> float:
        return time.monotonic() - self.started

    def phase(self, at: float, seconds: float) -> str:
        if self.restart is None:
            return "otherwise"
        down, up = self.restart
        if at + seconds >= down and at <= up:
            return "during the API server restart"
        if up < at <= up + SETTLE_SECONDS:
            return f"within {SETTLE_SECONDS:g}s after it was ready"
        return "otherwise"


class ApiConnection:
    """One keep-alive HTTPS connection to the API server as the admin; reconnects after errors."""

    def __init__(self, plane: ControlPlane, timeout: float = 15) -> None:
        self.host, self.port = "127.0.0.1", plane.apiserver_port
        self.context = ssl.create_default_context(cafile=str(plane.ca_file))
        self.headers = {"Authorization": f"Bearer {plane.token}", "Accept": "application/json"}
        self.timeout = timeout
        self.connection: http.client.HTTPSConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        if self.connection is None:
            self.connection = http.client.HTTPSConnection(
                self.host, self.port, context=self.context, timeout=self.timeout
            )
        headers = dict(self.headers)
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), content_type
        try:
            self.connection.request(method, path, data, headers)
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.connection.close()
            self.connection = None
            return 0, f"{type(error).__name__}: {error}"
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")


def pod(number: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": f"soak-{number}-", "annotations": {"entra.io/agent-identity": "sales-agent"}},
        "spec": {"containers": [{"name": "app", "image": "example.com/agent:1.0"}]},
    }


def check(status: int, body: Any, mode: str) -> str:
    """ "" when the Pod was stored with the sidecar where `mode` puts it and a current identity id; else what
    went wrong."""
    if status != 201 or not isinstance(body, dict):
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        return f"{status}: {message[:160]}"
    spec = body["spec"]
    init, regular = spec.get("initContainers") or [], spec["containers"]
    first = (init or [{}])[0] if mode == "native" else regular[0]
    if first.get("name") != "entra-sidecar" or (mode == "native" and first.get("restartPolicy") != "Always"):
        layout = [c["name"] for c in init], [c["name"] for c in regular]
        return f"stored without the {mode} sidecar: (initContainers, containers) {layout}"
    app = next(c for c in regular if c["name"] == "app")
    env = {item["name"]: item.get("value") for item in app.get("env", [])}
    if env.get("AGENT_IDENTITY_APP_ID") not in IDENTITY_IDS:
        return f"wrong identity id {env.get('AGENT_IDENTITY_APP_ID')!r}"
    return ""


def creator(plane: ControlPlane, clock: Clock, stop: threading.Event, results: list[Attempt], number: int) -> None:
    api = ApiConnection(plane)
    mode = Settings().default_mode(plane.version)  # where the webhook's auto mode puts the sidecar on this server
    sent = 0
    while not stop.is_set():
        at = clock.now()
        started = time.perf_counter()
        status, body = api.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod(number * 1_000_000 + sent))
        seconds = time.perf_counter() - started
        problem = check(status, body, mode)
        results.append(Attempt(at, seconds, not problem, problem))
        sent += 1
        if status == 0:
            stop.wait(0.05)  # the API server is down: do not spin


def janitor(plane: ControlPlane, stop: threading.Event) -> None:
    """Deletes the created Pods every few seconds (no kubelet runs them), so etcd stays small."""
    api = ApiConnection(plane)
    while not stop.wait(5):
        api.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods")


def editor(plane: ControlPlane, stop: threading.Event, edits: Counter[str]) -> None:
    """Every second, flips the identity's clientId and the blueprint's log level."""
    api = ApiConnection(plane)
    base = f"/apis/entra.io/v1alpha1/namespaces/{NAMESPACE}"
    flip = 0
    while not stop.wait(1):
        flip += 1
        changes = [
            ("agentidentities/sales-agent", {"spec": {"clientId": IDENTITY_IDS[flip % 2]}}),
            ("agentblueprints/sales", {"spec": {"logLevel": ("Information", "Warning")[flip % 2]}}),
        ]
        for path, patch in changes:
            status, _ = api.request("PATCH", f"{base}/{path}", patch, "application/merge-patch+json")
            edits["ok" if status == 200 else "failed"] += 1


def rotator(certs: Path, ca: Any, stop: threading.Event, renewals: Counter[str]) -> None:
    """A new serving certificate from the same CA every 20 s, as cert-manager renews one."""
    while not stop.wait(20):
        write_bundle(certs, ca, make_serving(ca, ["localhost"], ["127.0.0.1"]))
        renewals["written"] += 1


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)

    def at(pct: float) -> float:
        return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))] * 1000

    return f"p50 {at(50):.1f} ms, p90 {at(90):.1f} ms, p99 {at(99):.1f} ms, max {ordered[-1] * 1000:.1f} ms"


def _install_crds(plane: ControlPlane) -> None:
    apply_crds(plane)


def _prepare(plane: ControlPlane, webhook_url: str, ca_pem: bytes) -> None:
    opt_in(plane, NAMESPACE)
    apply(plane, *example_config(NAMESPACE))
    apply(plane, webhook_configuration("entra-soak", webhook_url, ca_pem, version=plane.version, timeoutSeconds=10))


def run(seconds: float, creators: int, version: str, workdir: Path) -> int:
    print(f"[soak] Kubernetes {version}: building or finding the control plane", file=sys.stderr, flush=True)
    plane = start_control_plane(build_binaries(version), workdir / "control-plane", version)
    try:
        reported = plane.server_version()
        print(f"[soak] API server {reported.get('gitVersion')} up; starting the webhook", file=sys.stderr, flush=True)
        _install_crds(plane)
        ca = make_ca()
        certs = workdir / "certs"
        write_bundle(certs, ca, make_serving(ca, ["localhost"], ["127.0.0.1"]))
        args = ("--kubeconfig", str(plane.kubeconfig), "--tls-reload-seconds", "1", "--drain-seconds", "0")
        with serve(certs, workdir, *args) as served:
            _prepare(plane, served.url + "/mutate", ca.cert_pem)
            return _drive(plane, served.logs, certs, ca, seconds, creators, str(reported.get("gitVersion")))
    finally:
        plane.stop()


def _drive(plane: ControlPlane, logs: Any, certs: Path, ca: Any, seconds: float, creators: int, version: str) -> int:
    clock, stop = Clock(), threading.Event()
    results: list[Attempt] = []
    edits: Counter[str] = Counter()
    renewals: Counter[str] = Counter()
    threads = [
        threading.Thread(target=creator, args=(plane, clock, stop, results, n), daemon=True) for n in range(creators)
    ]
    threads += [
        threading.Thread(target=janitor, args=(plane, stop), daemon=True),
        threading.Thread(target=editor, args=(plane, stop, edits), daemon=True),
        threading.Thread(target=rotator, args=(certs, ca, stop, renewals), daemon=True),
    ]
    print(
        f"[soak] {creators} creators for {seconds:g}s; the API server restarts at {seconds / 3:.0f}s",
        file=sys.stderr,
        flush=True,
    )
    for thread in threads:
        thread.start()
    restarted = False
    while clock.now() < seconds:
        if not restarted and clock.now() >= seconds / 3:
            down = clock.now()
            plane.restart_apiserver()
            clock.restart = (down, clock.now())
            restarted = True
            print(f"[soak] API server restarted: down {clock.restart[1] - down:.1f}s", file=sys.stderr, flush=True)
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return _report(results, clock, edits, renewals, logs(), seconds, creators, version)


def _report(
    results: list[Attempt],
    clock: Clock,
    edits: Counter[str],
    renewals: Counter[str],
    log_text: str,
    seconds: float,
    creators: int,
    version: str,
) -> int:
    failures: dict[str, list[Attempt]] = {}
    for attempt in results:
        if not attempt.ok:
            failures.setdefault(clock.phase(attempt.at, attempt.seconds), []).append(attempt)
    ok = [attempt.seconds for attempt in results if attempt.ok]
    outside = [a.seconds for a in results if a.ok and clock.phase(a.at, a.seconds) == "otherwise"]
    served = [json.loads(line) for line in log_text.splitlines() if '"msg":"admission"' in line]
    micros = [entry["micros"] / 1e6 for entry in served]
    outcomes = Counter(f"{entry['outcome']}/{entry['reason']}" for entry in served)
    down, up = clock.restart or (0.0, 0.0)
    lines = [
        f"soak: Kubernetes {version}, {seconds:g}s, {creators} concurrent creators",
        f"  admissions: {len(results):,} Pod creations sent, {len(ok):,} stored with the sidecar "
        f"({len(results) / seconds:.1f}/s sent, {len(ok) / seconds:.1f}/s stored)",
        f"  failures: {sum(len(found) for found in failures.values()):,} in all",
    ]
    for phase in ("during the API server restart", f"within {SETTLE_SECONDS:g}s after it was ready", "otherwise"):
        found = failures.get(phase, [])
        problems = Counter(attempt.problem for attempt in found).most_common(3)
        lines.append(f"    {phase}: {len(found):,}" + (f"  e.g. {problems}" if problems else ""))
    lines += [
        f"  API server restart: down at {down:.1f}s, ready again at {up:.1f}s ({up - down:.1f}s)",
        f"  creation latency through the API server (stored ones): {percentiles(ok)}",
        f"    outside the restart: {percentiles(outside)}",
        f"  webhook admissions logged: {len(served):,} {dict(outcomes)}; time in the webhook: {percentiles(micros)}",
        f"  serving certificate: {renewals['written']} renewals written, "
        f"{log_text.count('serving certificate reloaded')} reloads logged",
        f"  CR edits: {edits['ok']:,} applied, {edits['failed']:,} refused (while the API server was down)",
        f"  webhook log: {log_text.count('Traceback')} tracebacks",
    ]
    print("\n".join(lines), flush=True)
    return 1 if failures.get("otherwise") else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "300")))
    parser.add_argument("--creators", type=int, default=int(os.environ.get("SOAK_CREATORS", "16")))
    newest = os.environ.get("K8S", VERSIONS[-1]).split(",")[-1].strip()
    parser.add_argument(
        "--version", default=newest, choices=VERSIONS, help="Kubernetes version (default: newest of K8S)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entra-soak-") as temp:
        return run(args.seconds, args.creators, args.version, Path(temp))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
