"""Events about skipped and denied Pods: on the owner, never on dryRun, and rate-limited."""

from __future__ import annotations

import time
from typing import Any

from webhook.core.decision import Deny, Inject, Outcome, Skip
from webhook.core.review import Request
from webhook.injector.admission import Admitted
from webhook.injector.events import EventRecorder

OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9c", "uid": "rs-1", "controller": True}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admitted(outcome: Outcome, dry_run: bool = False, owned: bool = True, name: str | None = None) -> Admitted:
    metadata: dict[str, Any] = {"generateName": "web-7d9c-"}
    if owned:
        metadata["ownerReferences"] = [OWNER]
    if name:
        metadata["name"] = name
    request = Request("admission.k8s.io/v1", "u", "CREATE", "Pod", "", "agents", {"metadata": metadata}, dry_run)
    name_of = "denied" if isinstance(outcome, Deny) else "skipped" if isinstance(outcome, Skip) else "injected"
    return Admitted(request, outcome, name_of, 10)


def recorder(**options: Any) -> tuple[EventRecorder, list[tuple[str, dict[str, Any]]], list[str], Clock]:
    sent: list[tuple[str, dict[str, Any]]] = []
    results: list[str] = []
    clock = Clock()
    events = EventRecorder(lambda ns, event: sent.append((ns, event)), on_result=results.append, clock=clock, **options)
    events.start()
    return events, sent, results, clock


def drain(events: EventRecorder) -> None:
    events.stop()


DENY = Deny("unknown-identity", 'pod "web-7d9c-*" in namespace "agents": entra.io/agent-identity names "x"')
SKIP = Skip("no-identity", 'pod "web-7d9c-*" in namespace "agents": names no agent identity')


def test_a_denial_is_recorded_as_a_warning_on_the_owner() -> None:
    events, sent, results, _ = recorder()
    events.observe(admitted(DENY))
    drain(events)
    ((namespace, event),) = sent
    assert namespace == "agents"
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web-7d9c",
        "uid": "rs-1",
        "namespace": "agents",
    }
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "EntraInjectionDenied", DENY.message)
    assert event["metadata"] == {"generateName": "web-7d9c.", "namespace": "agents"}
    assert results == ["sent"]


def test_a_skip_is_recorded_as_normal() -> None:
    events, sent, _, _ = recorder()
    events.observe(admitted(SKIP))
    drain(events)
    assert [(e["type"], e["reason"]) for _, e in sent] == [("Normal", "EntraInjectionSkipped")]


def test_nothing_is_recorded_for_dry_run_injections_or_reinvocations() -> None:
    events, sent, _, _ = recorder()
    events.observe(admitted(DENY, dry_run=True))
    events.observe(admitted(Inject.of([], [], "injected", "sales", None)))
    events.observe(admitted(Skip("already-injected", "m", quiet=True)))
    events.observe(admitted(DENY, owned=False))  # no owner and no name yet: nothing to attach to
    drain(events)
    assert sent == []


def test_a_named_pod_without_owner_gets_the_event_itself() -> None:
    events, sent, _, _ = recorder()
    events.observe(admitted(SKIP, owned=False, name="lonely"))
    drain(events)
    assert sent[0][1]["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "name": "lonely", "namespace": "agents"}


def test_a_crash_looping_owner_gets_one_event_per_window_with_a_count() -> None:
    events, sent, results, clock = recorder(window=60)
    for _ in range(50):
        events.observe(admitted(DENY))
        clock.now += 1
    clock.now += 60
    events.observe(admitted(DENY))
    drain(events)
    assert len(sent) == 2
    assert sent[1][1]["message"] == DENY.message + " (49 more like this in the previous 60s)"
    assert results.count("suppressed") == 49


def test_many_owners_at_once_are_capped_by_the_token_bucket() -> None:
    events, sent, results, _ = recorder(rate=1, burst=5)
    for index in range(20):
        owner = {**OWNER, "uid": f"rs-{index}"}
        item = admitted(DENY)
        assert item.request.object is not None
        item.request.object["metadata"]["ownerReferences"] = [owner]
        events.observe(item)
    drain(events)
    assert len(sent) == 5
    assert results.count("dropped") == 15


def test_a_failing_api_is_counted_not_raised() -> None:
    results: list[str] = []

    def refuse(namespace: str, event: dict[str, Any]) -> None:
        del namespace, event
        raise OSError("connection refused")

    events = EventRecorder(refuse, on_result=results.append)
    events.start()
    events.observe(admitted(DENY))
    deadline = time.monotonic() + 5
    while "failed" not in results and time.monotonic() < deadline:
        time.sleep(0.01)
    events.stop()
    assert results == ["failed"]
