"""The controller's health, readiness and metrics port: a real server on loopback, and what it reports."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from webhook.common.errors import UsageError
from webhook.controller import reconcile
from webhook.controller.health import HealthServer
from webhook.controller.leader import Elector
from webhook.controller.loop import Controller
from webhook.controller.metrics import ControllerMetrics
from webhook.controller.run import Probes, serve_probes
from webhook.controller.settings import ControllerSettings


class Checks:
    def __init__(self) -> None:
        self.alive: tuple[bool, str] = (True, "leading")
        self.ready: tuple[bool, str] = (False, "leading, but has not listed agentidentities yet")


@pytest.fixture
def served() -> Iterator[tuple[httpx.Client, Checks, ControllerMetrics]]:
    checks, metrics = Checks(), ControllerMetrics()
    server = HealthServer("127.0.0.1", 0, lambda: checks.alive, lambda: checks.ready, metrics.registry)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            yield client, checks, metrics
    finally:
        server.stop()


def test_readiness_answers_503_with_the_reason_until_the_check_passes(
    served: tuple[httpx.Client, Checks, ControllerMetrics],
) -> None:
    client, checks, _ = served
    waiting = client.get("/readyz")
    assert (waiting.status_code, waiting.json()) == (
        503, {"status": "not ready", "reason": "leading, but has not listed agentidentities yet"},
    )  # fmt: skip
    checks.ready = (True, "leading, with agentblueprints and agentidentities listed")
    assert client.get("/readyz").json() == {
        "status": "ready", "detail": "leading, with agentblueprints and agentidentities listed",
    }  # fmt: skip


def test_liveness_fails_with_the_threads_that_stopped(served: tuple[httpx.Client, Checks, ControllerMetrics]) -> None:
    client, checks, _ = served
    assert (client.get("/healthz").status_code, client.get("/healthz").json()) == (
        200, {"status": "ok", "detail": "leading"},
    )  # fmt: skip
    checks.alive = (False, "threads stopped: watch-agentidentities")
    dead = client.get("/healthz")
    assert (dead.status_code, dead.json()) == (
        503,
        {"status": "unhealthy", "reason": "threads stopped: watch-agentidentities"},
    )


def test_metrics_are_served_in_the_prometheus_text_format(
    served: tuple[httpx.Client, Checks, ControllerMetrics],
) -> None:
    client, _, metrics = served
    metrics.follow(lambda: {("True", "Provisioned"): 2, ("False", "SecretAccessDenied"): 1}, lambda: 3)
    metrics.reconciled("AgentIdentity", "retry", "SecretAccessDenied")
    metrics.graph_request("POST", "201", 0.2)
    metrics.token("issued")
    metrics.leading(True)
    metrics.watch_restarted("agentidentities", "gone")
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    lines = set(response.text.splitlines())
    assert {
        'entra_controller_reconciles_total{kind="AgentIdentity",reason="SecretAccessDenied",result="retry"} 1.0',
        'entra_controller_graph_requests_total{method="POST",status="201"} 1.0',
        'entra_controller_graph_request_duration_seconds_bucket{le="0.25",method="POST"} 1.0',
        'entra_controller_graph_request_duration_seconds_bucket{le="0.1",method="POST"} 0.0',
        'entra_controller_token_acquisitions_total{result="issued"} 1.0',
        "entra_controller_leader 1.0",
        'entra_controller_watch_restarts_total{reason="gone",resource="agentidentities"} 1.0',
        'entra_controller_agent_identities{ready="False",reason="SecretAccessDenied"} 1.0',
        'entra_controller_agent_identities{ready="True",reason="Provisioned"} 2.0',
        "entra_controller_queue_depth 3.0",
    } <= lines
    assert client.get("/").status_code == 404


def test_identities_are_counted_by_ready_condition_and_unmanaged_ones_not_at_all() -> None:
    def identity(spec: dict[str, Any], status: Any = None) -> dict[str, Any]:
        return {"spec": spec, **({"status": status} if status is not None else {})}

    sponsors = {"blueprint": "b", "sponsors": [{"kind": "User", "id": "u"}]}
    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned"}]}
    denied = {"conditions": [{"type": "Other", "status": "True"}, {"type": "Ready", "status": "False",
                                                                   "reason": "SecretAccessDenied"}]}  # fmt: skip
    raws = [
        identity(sponsors, ready), identity(sponsors, ready), identity(sponsors, denied),
        identity(sponsors), identity(sponsors, "garbage"), identity({"blueprint": "b", "clientId": "c"}),
    ]  # fmt: skip
    assert reconcile.ready_counts(raws) == {
        ("True", "Provisioned"): 2, ("False", "SecretAccessDenied"): 1, ("Unknown", "NotReported"): 2,
    }  # fmt: skip


def test_a_standby_is_ready_once_it_reaches_the_lease_and_a_leader_once_it_has_listed_both_kinds() -> None:
    settings = ControllerSettings()
    now = [100.0]
    elector = Elector(None, "entra-system", "entra-controller", "me", 15, 5, clock=lambda: now[0])
    controller = Controller(None, settings, None, None)  # type: ignore[arg-type]  # never started
    probes = Probes(elector, controller)
    assert probes.alive() == (True, "standing by")
    assert probes.ready() == (False, "has not reached Lease entra-system/entra-controller yet")
    probes.leading = True
    assert probes.ready() == (False, "leading, but has not listed agentblueprints and agentidentities yet")
    controller._on_list("AgentBlueprint", [])  # what the watch does once it has listed
    controller._on_list("AgentIdentity", [])
    assert probes.ready() == (True, "leading, with agentblueprints and agentidentities listed")
    probes.keeper = threading.Thread(target=lambda: None, name="lease")
    probes.keeper.start()
    probes.keeper.join()
    assert probes.alive() == (False, "threads stopped: lease")


def test_a_port_in_use_is_a_usage_error_naming_the_flag_and_the_way_out() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = ControllerSettings(metrics_host="127.0.0.1", metrics_port=port)
        controller = Controller(None, settings, None, None)  # type: ignore[arg-type]
        probes = Probes(Elector(None, "ns", "lease", "me", 15, 5), controller)
        with pytest.raises(UsageError) as refused:
            serve_probes(settings, probes, ControllerMetrics())
    assert str(refused.value).startswith(f"cannot serve /healthz, /readyz and /metrics on 127.0.0.1:{port} (")
    assert str(refused.value).endswith("choose another --metrics-port, or 0 to turn them off")
    assert serve_probes(ControllerSettings(metrics_port=0), probes, ControllerMetrics()) is None
