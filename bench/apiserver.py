"""`make bench-apiserver`: what the webhook adds to a Pod creation, as the API server's clients see it.

A real control plane (the e2e harness's etcd, kube-apiserver and kube-controller-manager, default
Kubernetes 1.36, `K8S=1.20` for the other) and `entra-webhook serve --kubeconfig` registered with the
shipped MutatingWebhookConfiguration. Six kinds of Pod creation, in turn, round after round (the
order rotates each round), on one keep-alive HTTPS connection, so all see the same machine:

- plain: the Pod in a namespace the webhook never sees;
- shaped: the same Pod already as ours leaves it (injected offline by the same core), no webhook:
  the cost of storing the bigger Pod alone, the limit no webhook can beat;
- webhook: the Pod through our webhook;
- fixed: the Pod through a webhook that answers with our patch from memory (`bench.fixed_app`):
  what one call costs the API server itself (the review's encoding, TLS, applying the patch,
  re-running its built-in plugins), with no work per request on the webhook's side;
- fixed-few: the same, with the same result written as fewer, larger ops (whole lists and maps:
  not add-only, measured only to see whether the number of ops matters);
- fixed-bare: `fixed` without the configuration's matchConditions (1.30+; the same as `fixed`
  on older servers), to see what evaluating them costs.

Every variant's stored Pod is checked to be the same Pod (names aside) before anything is reported.
Admissions per Pod come from our admission log and from the API server's own webhook metrics.
A measurement, never a test: nothing fails on a slow figure.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import http.client
import json
import os
import re
import ssl
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpatch

from bench.pod import EXAMPLES
from bench.pod import NAMESPACE as EXAMPLES_NAMESPACE
from bench.report import RESULTS
from bench.servers import Certs, baseline_command, serving
from bench.servers import free_port as any_port
from bench.stats import median, percentile
from tests.e2e.conftest import apply, apply_crds, example_config, wait_for_service_account, webhook_configuration
from tests.e2e.controlplane import ControlPlane, build_binaries, start_control_plane
from tests.servers import make_certs, serve
from webhook.core.decision import Inject, decide
from webhook.core.settings import Settings
from webhook.injector.sources.files import FileSource

Json = dict[str, Any]
PLAIN, ON, FIXED, FEW, BARE = "bench-no-webhook", "bench-webhook", "bench-fixed", "bench-fixed-few", "bench-fixed-bare"
OURS = ("namespace.inject.entra.io", "pod.inject.entra.io")  # the shipped configuration's two webhooks
SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True, slots=True)
class Variant:
    key: str
    namespace: str
    label: str
    injected: bool  # whether the stored Pod has the sidecar
    hooks: tuple[str, ...] = ()  # the webhooks the API server calls for it (their names in its metrics)


VARIANTS = (
    Variant("plain", PLAIN, "no webhook", injected=False),
    Variant("shaped", PLAIN, "no webhook, pre-shaped", injected=True),
    Variant("webhook", ON, "through ours", injected=True, hooks=OURS),
    Variant("fixed", FIXED, "fixed patch, our ops", injected=True, hooks=("many.fixed.bench",)),
    Variant("fixed-few", FEW, "fixed patch, fewer ops", injected=True, hooks=("few.fixed.bench",)),
    Variant("fixed-bare", BARE, "fixed, no matchConditions", injected=True, hooks=("bare.fixed.bench",)),
)
BY_KEY = {variant.key: variant for variant in VARIANTS}


def pod(number: int) -> Json:
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


def injection(document: Json, version: tuple[int, int]) -> Inject:
    """Our patch for `document`, from the same core and configuration the served webhook uses."""
    outcome = decide(document, EXAMPLES_NAMESPACE, FileSource([EXAMPLES]).load(), Settings(), version)
    if not isinstance(outcome, Inject):
        raise RuntimeError(f"the bench Pod was not injected offline: {outcome}")
    return outcome


def fewer_ops(seen: Json, ops: list[Json]) -> list[Json]:
    """The result of `ops` on `seen`, as one `add` per changed member of metadata and spec (whole
    lists and maps, so replacing what is there): the fewest ops that make the same Pod."""
    after = jsonpatch.apply_patch(seen, ops)
    few = [
        {"op": "add", "path": f"/{parent}/{key}", "value": value}
        for parent in ("metadata", "spec")
        for key, value in after[parent].items()
        if seen[parent].get(key) != value
    ]
    if jsonpatch.apply_patch(seen, few) != after:
        raise RuntimeError("the fewer-ops patch does not make the same Pod")
    return few


class Client:
    """One keep-alive HTTPS connection to the API server, as a controller's client keeps one."""

    def __init__(self, plane: ControlPlane) -> None:
        host, port = plane.server.removeprefix("https://").split(":")
        context = ssl.create_default_context(cafile=str(plane.ca_file))
        self.connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
        self.headers = {"Authorization": f"Bearer {plane.token}", "Content-Type": "application/json"}

    def create(self, namespace: str, body: Json, dry_run: bool = False) -> tuple[float, Json]:
        """Seconds the POST took, and the Pod the API server stored."""
        data = json.dumps(body).encode()
        path = f"/api/v1/namespaces/{namespace}/pods" + ("?dryRun=All" if dry_run else "")
        started = time.perf_counter()
        self.connection.request("POST", path, data, self.headers)
        response = self.connection.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 201:
            raise RuntimeError(f"creating a Pod in {namespace} answered {response.status}: {raw[:300]!r}")
        stored: Json = json.loads(raw)
        return elapsed, stored


def _sidecar_injected(stored: Json) -> bool:
    spec = stored["spec"]
    return any(c["name"] == "entra-sidecar" for c in [*spec.get("initContainers", []), *spec["containers"]])


def _service_account_volume(name: str) -> bool:
    """ServiceAccount admission's volume, named with a random suffix: `<sa>-token-*` (1.20), `kube-api-access-*`."""
    return "-token-" in name or name.startswith("kube-api-access-")


def normalized(stored: Json) -> Json:
    """A stored Pod without what differs between two creations of the same Pod: its name, uid and
    times, the random suffix of the service-account volume, and the order of the volumes."""
    spec = json.loads(json.dumps(stored["spec"]), object_hook=_renamed)
    spec["volumes"] = sorted(spec.get("volumes", []), key=lambda volume: volume["name"])
    metadata = stored["metadata"]
    return {"labels": metadata.get("labels"), "annotations": metadata.get("annotations"), "spec": spec}


def _renamed(item: Json) -> Json:
    """The service-account volume and its mounts under one name; the volume without its source (on
    1.20 a Secret whose name each namespace draws at random)."""
    name = item.get("name")
    if isinstance(name, str) and _service_account_volume(name):
        if "mountPath" in item:
            return {**item, "name": "service-account-volume"}
        if len(item) == 2:
            return {"name": "service-account-volume"}
    return item


def _namespaces(plane: ControlPlane) -> None:
    labels = {
        ON: {"entra.io/inject": "enabled"},
        FIXED: {"bench": "fixed"},
        FEW: {"bench": "few"},
        BARE: {"bench": "bare"},
    }
    for name in (PLAIN, ON, FIXED, FEW, BARE):
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels.get(name, {})},
        }
        apply(plane, namespace)
        apply(plane, *example_config(name))
        wait_for_service_account(plane, name, "default")
        wait_for_service_account(plane, name, "sales-agent")


def _fixed_configuration(plane: ControlPlane, url: str, ca: bytes) -> Json:
    """Our configuration's first webhook (same rules, selectors and conditions), once per fixed variant,
    each for its own namespace, never reinvoked (a fixed patch applies once)."""
    configuration = webhook_configuration("zz-bench-fixed", url, ca, version=plane.version, reinvocationPolicy="Never")
    first = configuration["webhooks"][0]
    configuration["webhooks"] = []
    for hook, path, label in (("many", "many", "fixed"), ("few", "few", "few"), ("bare", "many", "bare")):
        webhook = copy.deepcopy(first)
        webhook["name"] = f"{hook}.fixed.bench"
        webhook["clientConfig"]["url"] = f"{url}/{path}"
        webhook["namespaceSelector"] = {"matchLabels": {"bench": label}}
        if hook == "bare":
            webhook.pop("matchConditions", None)
        configuration["webhooks"].append(webhook)
    return configuration


# The API server's own histograms of its mutating admission steps, read by the `name` label: the
# webhook calls (building the review, the round trip, applying and decoding the patch), the built-in
# plugins (`plugin:ServiceAccount`), and the webhooks' matchConditions (`conditions:NAME`).
_HISTOGRAMS = {
    "apiserver_admission_webhook_admission_duration_seconds": "",
    "apiserver_admission_controller_admission_duration_seconds": "plugin:",
    "apiserver_admission_match_condition_evaluation_seconds": "conditions:",
}
_METRIC = re.compile(r"^([a-z_]+)_(sum|count)\{([^}]*)\} (\S+)$")


def admission_metrics(plane: ControlPlane) -> dict[str, tuple[float, float]]:
    status, text = plane.request("GET", "/metrics", timeout=30)
    if status != 200 or not isinstance(text, str):
        raise RuntimeError(f"GET /metrics answered {status}")
    return admission_steps(text)


def admission_steps(text: str) -> dict[str, tuple[float, float]]:
    """(count, seconds) of each mutating admission step the API server timed, by its key."""
    found: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match and match[1] in _HISTOGRAMS and 'type="admit"' in match[3]:
            name = re.search(r'name="([^"]*)"', match[3])
            if name:
                found[_HISTOGRAMS[match[1]] + name[1]][0 if match[2] == "count" else 1] += float(match[4])
    return {key: (count, seconds) for key, (count, seconds) in found.items()}


def first_difference(one: Any, other: Any, path: str = "") -> str | None:
    """The first JSON path where two documents differ, with both values there (short), or None."""
    if isinstance(one, dict) and isinstance(other, dict):
        for key in sorted(one.keys() | other.keys()):
            found = first_difference(one.get(key), other.get(key), f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(one, list) and isinstance(other, list) and len(one) == len(other):
        for index, (a, b) in enumerate(zip(one, other, strict=True)):
            found = first_difference(a, b, f"{path}/{index}")
            if found:
                return found
        return None
    return None if one == other else f"{path or '/'}: {json.dumps(one)[:200]} vs {json.dumps(other)[:200]}"


def _rotated(round_number: int) -> Iterator[Variant]:
    """Every variant once, each round starting one further on, so none always goes first."""
    start = round_number % len(VARIANTS)
    yield from VARIANTS[start:] + VARIANTS[:start]


def measure(
    plane: ControlPlane, pods: int, warmup: int, shaped: Json, gap: float = 0.0
) -> tuple[dict[str, list[float]], Json]:
    """Seconds per creation for each variant, and the calls the API server made per webhook meanwhile;
    `gap` seconds of quiet before each round (sparse arrivals: connections left idle in between)."""
    client = Client(plane)
    seconds: dict[str, list[float]] = {variant.key: [] for variant in VARIANTS}
    first: dict[str, Json] = {}
    before: dict[str, tuple[float, float]] = {}
    for number in range(warmup + pods):
        if number == warmup:
            before = admission_metrics(plane)
        time.sleep(gap)
        for variant in _rotated(number):
            body = copy.deepcopy(shaped) if variant.key == "shaped" else pod(number)
            body["metadata"]["name"] = f"{variant.key}-{number}"
            elapsed, stored = client.create(variant.namespace, body)
            if _sidecar_injected(stored) != variant.injected:
                raise RuntimeError(f"Pod {number} ({variant.key}): injected={_sidecar_injected(stored)}")
            first.setdefault(variant.key, normalized(stored))
            if number >= warmup:
                seconds[variant.key].append(elapsed)
    for variant in VARIANTS[2:]:
        if first[variant.key] != first["shaped"]:
            where = first_difference(first[variant.key], first["shaped"])
            raise RuntimeError(f"the {variant.key} Pod is not the pre-shaped one: they differ at {where}")
    after = admission_metrics(plane)
    calls = {
        name: {
            "calls": after[name][0] - before.get(name, (0, 0))[0],
            "seconds": after[name][1] - before.get(name, (0, 0))[1],
        }
        for name in after
    }
    return seconds, calls


def run(version: str, pods: int, warmup: int, gap: float = 0.0) -> Json:
    with tempfile.TemporaryDirectory(prefix="entra-bench-apiserver-") as temp:
        workdir = Path(temp)
        print(f"[bench-apiserver] starting Kubernetes {version}", file=sys.stderr, flush=True)
        plane = start_control_plane(build_binaries(version), workdir / "control-plane", version)
        try:
            apply_crds(plane)
            certs = make_certs(workdir / "certs")
            ca = (certs / "ca.crt").read_bytes()
            _namespaces(plane)
            # The Pod as a webhook sees it (after the built-in plugins), and our ops for it, two ways;
            # seen where the fewer ops go, whose whole volume list names its namespace's token Secret on 1.20.
            _, seen = Client(plane).create(FEW, pod(0), dry_run=True)
            ops = injection(seen, plane.version).ops
            few = fewer_ops(seen, ops)
            patches = workdir / "patches"
            patches.mkdir()
            (patches / "many.json").write_text(json.dumps(ops))
            (patches / "few.json").write_text(json.dumps(few))
            shaped = jsonpatch.apply_patch(pod(0), injection(pod(0), plane.version).ops)
            port = any_port()
            fixed = [*baseline_command(Certs(certs), port), "--fixed", str(patches)]
            with (
                serving("fixed", fixed, Certs(certs), port, workdir) as fixed_server,
                serve(certs, workdir, "--kubeconfig", str(plane.kubeconfig)) as served,
            ):
                apply(plane, webhook_configuration("entra-bench", served.url + "/mutate", ca, version=plane.version))
                apply(plane, _fixed_configuration(plane, fixed_server.url, ca))
                print(f"[bench-apiserver] {pods} Pods of each kind, interleaved", file=sys.stderr, flush=True)
                seconds, calls = measure(plane, pods, warmup, shaped, gap)
                log = served.logs()
            served_version = plane.server_version()["gitVersion"]
        finally:
            plane.stop()
    return {
        "version": served_version,
        "pods": pods,
        "warmup": warmup,
        "gap": gap,
        "seconds": seconds,
        "api_server_calls": calls,
        "admissions": admissions(log),
        "webhook_micros": admission_micros(log),
        "ops": {"ours": len(ops), "fewer": len(few)},
        "patch_bytes": {"ours": _size(ops), "fewer": _size(few)},
    }


def _size(ops: list[Json]) -> int:
    return len(json.dumps(ops, separators=(",", ":")))


def _admission_lines(log: str) -> Iterator[Json]:
    for line in log.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and record.get("msg") == "admission":
                yield record


def admission_micros(log: str) -> list[int]:
    """`micros` of each admission line the webhook wrote: its own time to decide, from its side."""
    return [int(record["micros"]) for record in _admission_lines(log)]


def admissions(log: str) -> dict[str, float]:
    """Our admissions per Pod created through the webhook, by reason (`injected`, `already-injected`, ...)."""
    records = [record for record in _admission_lines(log) if record.get("namespace") == ON]
    pods = len({record["pod"] for record in records})
    counted = collections.Counter(str(record["reason"]) for record in records)
    return {reason: count / pods for reason, count in counted.items()}


def _differences(result: Json, minuend: str, subtrahend: str) -> list[float]:
    """Per round: the time of one kind minus the other's in the same round."""
    return [a - b for a, b in zip(result["seconds"][minuend], result["seconds"][subtrahend], strict=True)]


def summary(result: Json) -> dict[str, float]:
    seconds = result["seconds"]
    figures: dict[str, float] = {}
    for key in seconds:
        for name, pct in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0)):
            figures[f"{key}_{name}_ms"] = percentile(seconds[key], pct) * 1e3
    for name in ("p50", "p90", "p99"):
        figures[f"added_{name}_ms"] = figures[f"webhook_{name}_ms"] - figures[f"shaped_{name}_ms"]
    for label, minuend, subtrahend in (
        ("added", "webhook", "shaped"),
        ("bigger_pod", "shaped", "plain"),
        ("call", "fixed", "shaped"),
        ("call_few", "fixed-few", "shaped"),
        ("ours_over_fixed", "webhook", "fixed"),
        ("few_over_many", "fixed-few", "fixed"),
        ("conditions", "fixed", "fixed-bare"),
    ):
        figures[f"{label}_median_of_pairs_ms"] = median(_differences(result, minuend, subtrahend)) * 1e3
    figures["creation_ratio_p50"] = figures["webhook_p50_ms"] / figures["plain_p50_ms"]
    pods = result["pods"]
    calls = result["api_server_calls"]
    for variant in VARIANTS:
        if variant.hooks:
            made = sum(calls.get(hook, {}).get("calls", 0.0) for hook in variant.hooks)
            spent = sum(calls.get(hook, {}).get("seconds", 0.0) for hook in variant.hooks)
            figures[f"{variant.key}_calls_per_pod"] = made / pods
            figures[f"{variant.key}_call_mean_ms"] = spent / made * 1e3 if made else 0.0
    figures["webhook_decide_p50_ms"] = median(result.get("webhook_micros") or []) / 1e3
    return figures


AIM_ADDED_MS = 2.0
AIM_RATIO = 1.6


def lines(result: Json) -> list[str]:
    figures = summary(result)
    rows = [
        f"API server {result['version']}: {result['pods']} Pod creations of each kind (after {result['warmup']} "
        "warm-up rounds), interleaved in rotating order, one keep-alive connection; POST .../pods round trip"
        + (f"; {result['gap']:g} s of quiet before each round" if result.get("gap") else ""),
        f"  {'':<26}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}",
    ]
    for variant in VARIANTS:
        rows.append(
            f"  {variant.label:<26}"
            + "".join(f"{figures[f'{variant.key}_{n}_ms']:>9.2f}" for n in ("p50", "p90", "p99"))
        )
    rows.append(
        f"  {'added over the limit':<26}" + "".join(f"{figures[f'added_{n}_ms']:>9.2f}" for n in ("p50", "p90", "p99"))
    )
    admitted = result["admissions"]
    few, many = result["ops"]["fewer"], result["ops"]["ours"]
    rows.append("  medians of the per-round differences, ms:")
    for label, key in (
        ("the bigger Pod alone (pre-shaped - no webhook)", "bigger_pod"),
        ("our webhook over the limit (ours - pre-shaped)", "added"),
        ("a call doing nothing per request (fixed - pre-shaped)", "call"),
        (f"{few} ops instead of {many} (fixed-few - fixed)", "few_over_many"),
        ("the matchConditions (fixed - fixed-bare)", "conditions"),
        ("our server's own share (ours - fixed)", "ours_over_fixed"),
    ):
        rows.append(f"    {label:<56}{figures[f'{key}_median_of_pairs_ms']:7.2f}")
    rows += [
        f"  admissions per injected Pod: {sum(admitted.values()):.2f} by our log ({_reasons(admitted)}), "
        f"{figures['webhook_calls_per_pod']:.2f} by the API server's metrics",
        "  the API server's mean time per webhook call (its histogram: review, round trip, patch): "
        + ", ".join(
            f"{variant.key} {figures[f'{variant.key}_call_mean_ms']:.2f} ms" for variant in VARIANTS if variant.hooks
        ),
        f"  our decision itself (the `micros` of our admission lines, p50): {figures['webhook_decide_p50_ms']:.3f} ms",
        f"  patch: ours {result['ops']['ours']} ops, {result['patch_bytes']['ours']:,} B; "
        f"fewer {result['ops']['fewer']} ops, {result['patch_bytes']['fewer']:,} B",
        "  aims (a report, not a test):",
        f"    admissions per injected Pod 1.0: {_met(abs(figures['webhook_calls_per_pod'] - 1.0) < 0.005)} "
        f"({figures['webhook_calls_per_pod']:.2f})",
        f"    added p50 over the limit <= {AIM_ADDED_MS:.1f} ms: {_met(figures['added_p50_ms'] <= AIM_ADDED_MS)} "
        f"({figures['added_p50_ms']:.2f} ms)",
        f"    creation p50 within {AIM_RATIO}x no webhook: {_met(figures['creation_ratio_p50'] <= AIM_RATIO)} "
        f"({figures['creation_ratio_p50']:.2f}x)",
    ]
    return rows


def _met(met: bool) -> str:
    return "MET" if met else "NOT MET"


def _reasons(admitted: dict[str, float]) -> str:
    return ", ".join(f"{reason} {count:.2f}" for reason, count in sorted(admitted.items())) or "none"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apiserver", description=__doc__)
    parser.add_argument("--pods", type=int, default=int(os.environ.get("BENCH_PODS", "300")))
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--version", default=os.environ.get("K8S", "1.36").split(",")[-1])
    parser.add_argument("--gap", type=float, default=0.0, help="seconds of quiet before each round (sparse Pods)")
    args = parser.parse_args(argv)
    result = run(args.version, args.pods, args.warmup, args.gap)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"apiserver-{args.version}{'-gap' if args.gap else ''}.json"
    path.write_text(json.dumps({**result, "summary": summary(result)}, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines(result)))
    print(f"\nraw samples: {path}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
