"""`make bench-apiserver`: what the webhook adds to a Pod creation, as the API server's clients see it.

A real control plane (the e2e harness's etcd, kube-apiserver and kube-controller-manager, default
Kubernetes 1.36, `K8S=1.20` for the other), `entra-webhook serve --kubeconfig` registered with the
shipped MutatingWebhookConfiguration, and two namespaces holding the same blueprints, identity and
service account: one labelled `entra.io/inject=enabled` (every Pod goes through the webhook), one
not (the API server never calls it). Pods are created in turn in each, on one keep-alive HTTPS
connection, so both see the same machine; the added latency is the difference of the two
distributions' percentiles. A measurement, never a test: nothing fails on a slow figure.
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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import RESULTS
from bench.stats import median, percentile
from tests.e2e.conftest import apply, apply_crds, example_config, wait_for_service_account, webhook_configuration
from tests.e2e.controlplane import ControlPlane, build_binaries, start_control_plane
from tests.servers import make_certs, serve

ON, OFF = "bench-webhook", "bench-no-webhook"


def pod(number: int) -> dict[str, Any]:
    """A Pod as a Deployment's would reach the webhook: named by an identity, two app containers."""
    container = {"image": "registry.example.com/agents/sales:1.4.2", "ports": [{"containerPort": 8080}]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"sales-agent-{number}",
            "labels": {"app.kubernetes.io/name": "sales-agent"},
            "annotations": {"entra.io/agent-identity": "sales-agent"},
        },
        "spec": {
            "serviceAccountName": "sales-agent",
            "containers": [
                {**container, "name": "agent", "env": [{"name": "LOG_LEVEL", "value": "info"}]},
                {"name": "exporter", "image": "registry.example.com/agents/exporter:0.9.0"},
            ],
        },
    }


class Client:
    """One keep-alive HTTPS connection to the API server, as a controller's client keeps one."""

    def __init__(self, plane: ControlPlane) -> None:
        host, port = plane.server.removeprefix("https://").split(":")
        context = ssl.create_default_context(cafile=str(plane.ca_file))
        self.connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
        self.headers = {"Authorization": f"Bearer {plane.token}", "Content-Type": "application/json"}

    def create(self, namespace: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Seconds the POST took, and the Pod the API server stored."""
        data = json.dumps(body).encode()
        started = time.perf_counter()
        self.connection.request("POST", f"/api/v1/namespaces/{namespace}/pods", data, self.headers)
        response = self.connection.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 201:
            raise RuntimeError(f"creating a Pod in {namespace} answered {response.status}: {raw[:300]!r}")
        stored: dict[str, Any] = json.loads(raw)
        return elapsed, stored


def _sidecar_injected(stored: dict[str, Any]) -> bool:
    spec = stored["spec"]
    return any(c["name"] == "entra-sidecar" for c in [*spec.get("initContainers", []), *spec["containers"]])


def _namespaces(plane: ControlPlane) -> None:
    for name, labels in ((ON, {"entra.io/inject": "enabled"}), (OFF, {})):
        apply(plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
        apply(plane, *example_config(name))
        wait_for_service_account(plane, name, "default")
        wait_for_service_account(plane, name, "sales-agent")


def measure(plane: ControlPlane, pods: int, warmup: int) -> dict[str, list[float]]:
    client = Client(plane)
    seconds: dict[str, list[float]] = {ON: [], OFF: []}
    for number in range(warmup + pods):
        order = (ON, OFF) if number % 2 == 0 else (OFF, ON)  # neither always goes first
        for namespace in order:
            elapsed, stored = client.create(namespace, pod(number))
            if _sidecar_injected(stored) != (namespace == ON):
                raise RuntimeError(f"Pod {number} in {namespace}: injected={_sidecar_injected(stored)}")
            if number >= warmup:
                seconds[namespace].append(elapsed)
    return seconds


def run(version: str, pods: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="entra-bench-apiserver-") as temp:
        workdir = Path(temp)
        print(f"[bench-apiserver] starting Kubernetes {version}", file=sys.stderr, flush=True)
        plane = start_control_plane(build_binaries(version), workdir / "control-plane", version)
        try:
            apply_crds(plane)
            certs = make_certs(workdir / "certs")
            with serve(certs, workdir, "--kubeconfig", str(plane.kubeconfig)) as served:
                ca = (certs / "ca.crt").read_bytes()
                apply(plane, webhook_configuration("entra-bench", served.url + "/mutate", ca, version=plane.version))
                _namespaces(plane)
                print(f"[bench-apiserver] {pods} Pods in each namespace, interleaved", file=sys.stderr, flush=True)
                seconds = measure(plane, pods, warmup)
                micros = admission_micros(served.logs())
            served_version = plane.server_version()["gitVersion"]
        finally:
            plane.stop()
    return {"version": served_version, "pods": pods, "warmup": warmup, "seconds": seconds, "webhook_micros": micros}


def admission_micros(log: str) -> list[int]:
    """`micros` of each admission line the webhook wrote: its own time to decide, from its side."""
    found = []
    for line in log.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("msg") == "admission":
                found.append(int(record["micros"]))
    return found


def summary(result: dict[str, Any]) -> dict[str, float]:
    on, off = result["seconds"][ON], result["seconds"][OFF]
    figures = {}
    for name, pct in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0)):
        with_ms, without_ms = percentile(on, pct) * 1e3, percentile(off, pct) * 1e3
        figures[f"with_{name}_ms"], figures[f"without_{name}_ms"] = with_ms, without_ms
        figures[f"added_{name}_ms"] = with_ms - without_ms
    figures["added_median_of_pairs_ms"] = median([a - b for a, b in zip(on, off, strict=True)]) * 1e3
    figures["webhook_decide_p50_ms"] = median(result.get("webhook_micros") or []) / 1e3
    return figures


def lines(result: dict[str, Any]) -> list[str]:
    figures = summary(result)
    rows = [
        f"API server {result['version']}: {result['pods']} Pod creations in each namespace (after {result['warmup']} "
        "warm-up), interleaved, one keep-alive connection; POST /api/v1/namespaces/NS/pods round trip",
        f"  {'':<22}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}",
    ]
    for label, key in (("with the webhook", "with"), ("without (unlabelled)", "without"), ("added", "added")):
        rows.append(
            f"  {label:<22}" + "".join(f"{figures[f'{key}_{name}_ms']:>9.2f}" for name in ("p50", "p90", "p99"))
        )
    rows.append(f"  median of the per-pair differences: {figures['added_median_of_pairs_ms']:.2f} ms")
    rows.append(
        f"  of which the webhook's own decision (the `micros` of its admission lines, p50): "
        f"{figures['webhook_decide_p50_ms']:.3f} ms; the rest is the API server calling it over TLS, "
        "applying the patch, and admitting and storing the larger Pod"
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apiserver", description=__doc__)
    parser.add_argument("--pods", type=int, default=int(os.environ.get("BENCH_PODS", "300")))
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--version", default=os.environ.get("K8S", "1.36").split(",")[-1])
    args = parser.parse_args(argv)
    result = run(args.version, args.pods, args.warmup)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "apiserver.json"
    path.write_text(json.dumps({**result, "summary": summary(result)}, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines(result)))
    print(f"\nraw samples: {path}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
