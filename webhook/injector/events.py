"""Kubernetes Events that say why a Pod was not injected, on its owner where users look.

`kubectl describe replicaset web-7d9c` shows them. Never on dryRun; one Event per owner and
reason per window (the rest are counted into the next one), a global token bucket on top, and a
bounded queue drained by one thread, so a crash-looping ReplicaSet cannot flood the API server
and the admission path never waits on the API.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.common.events import event
from webhook.core.decision import Deny, Skip
from webhook.core.pod import mapping, owner
from webhook.injector.admission import Admitted

log = logging.getLogger(__name__)

COMPONENT = "entra-webhook"
QUIET_SKIPS = frozenset({"already-injected", "invalid-pod"})  # not news: a reinvocation, or an API error to come


@dataclass(frozen=True, slots=True)
class _Pending:
    namespace: str
    involved: dict[str, Any]
    reason: str
    message: str
    warning: bool


class EventRecorder:
    def __init__(
        self,
        send: Callable[[str, dict[str, Any]], None],
        window: float = 60.0,
        rate: float = 5.0,
        burst: int = 20,
        queue_size: int = 1000,
        on_result: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.window = window
        self.rate = rate
        self.burst = burst
        self.on_result = on_result or (lambda _: None)
        self.clock = clock
        self._recent: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._tokens = float(burst)
        self._refilled = clock()
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_cluster(cls, api: Any, **options: Any) -> EventRecorder:
        from kubernetes import client

        core = client.CoreV1Api(api)

        def send(namespace: str, event: dict[str, Any]) -> None:
            core.create_namespaced_event(namespace, event, _request_timeout=5)

        return cls(send, **options)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._drain, name="events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def observe(self, admitted: Admitted) -> None:
        pending = self._pending(admitted)
        if pending is None:
            return
        with self._lock:
            message = self._limit(pending)
        if message is None:
            return
        try:
            self._queue.put_nowait(dataclasses.replace(pending, message=message))
        except queue.Full:
            self.on_result("dropped")

    def _pending(self, admitted: Admitted) -> _Pending | None:
        outcome = admitted.outcome
        if admitted.request.dry_run or not isinstance(outcome, Deny | Skip) or outcome.reason in QUIET_SKIPS:
            return None
        pod = admitted.request.object or {}
        involved = _involved(pod, admitted.request.namespace)
        if involved is None:
            return None
        denied = isinstance(outcome, Deny)
        warning = denied or admitted.outcome_name == "error"
        reason = "EntraInjectionDenied" if denied else "EntraInjectionSkipped"
        return _Pending(admitted.request.namespace, involved, reason, outcome.message, warning)

    def _limit(self, pending: _Pending) -> str | None:
        """The message to send now, or None when this one is folded into a later Event or dropped."""
        now = self.clock()
        key = (pending.namespace, str(pending.involved.get("uid") or pending.involved["name"]), pending.message)
        started, folded = self._recent.get(key, (float("-inf"), 0))
        if now - started < self.window:
            self._recent[key] = (started, folded + 1)
            self.on_result("suppressed")
            return None
        self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now
        if self._tokens < 1:
            self.on_result("dropped")
            return None
        self._tokens -= 1
        self._recent[key] = (now, 0)
        if len(self._recent) > 10_000:
            self._recent = {k: v for k, v in self._recent.items() if now - v[0] < self.window}
        more = f" ({folded} more like this in the previous {self.window:.0f}s)" if folded else ""
        return pending.message + more  # clipped to the API's limit where the Event is made

    def _drain(self) -> None:
        instance = socket.gethostname()
        while (pending := self._queue.get()) is not None:
            body = event(
                pending.involved, pending.reason, pending.message,
                warning=pending.warning, component=COMPONENT, instance=instance,
            )  # fmt: skip
            try:
                self.send(pending.namespace, body)
                self.on_result("sent")
            except Exception as error:
                self.on_result("failed")
                log.warning("could not record Event on %s: %s", pending.involved.get("name"), error)


def _involved(pod: Mapping[str, Any], namespace: str) -> dict[str, Any] | None:
    """The owner if the Pod has one, else the Pod itself when it has a name; strings only."""
    controller = owner(pod)
    if controller is not None:
        return {
            "apiVersion": _string(controller.get("apiVersion")),
            "kind": controller["kind"],
            "name": controller["name"],
            "uid": _string(controller.get("uid")),
            "namespace": namespace,
        }
    name = _string(mapping(pod, "metadata").get("name"))
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": namespace} if name else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None
