"""The admission service: AdmissionReview in, answer out, with the live lookup and the observers.

This is the thin async shell around the pure core: it reads the current config snapshot, calls
`decide`, and gives a Pod that names a just-created object (or a managed identity the controller
has just made ready) one second chance through the source.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.common.models import ObjectRef
from webhook.common.text import clip
from webhook.core.decision import Deny, Outcome, Skip, decide
from webhook.core.inject import native_fallback
from webhook.core.rendered import Rendered
from webhook.core.review import Request, answer
from webhook.core.settings import Settings
from webhook.injector.sources import ConfigSource

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Admitted:
    """What observers (logs, metrics, Events) learn about one Pod admission."""

    request: Request
    outcome: Outcome
    outcome_name: str  # injected | skipped | denied | error
    micros: int

    @property
    def reason(self) -> str:
        return self.outcome.reason


Observer = Callable[[Admitted], None]
INTERNAL_ERROR = Skip(
    "internal-error", "entra webhook internal error: pod admitted without the Entra sidecar (see webhook logs)"
)


class Admission:
    def __init__(
        self,
        source: ConfigSource,
        settings: Settings,
        server_version: tuple[int, int] | None = None,
        observers: list[Observer] | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.server_version = server_version
        self.observers = observers or []
        self.rendered = Rendered()  # the sidecar and friends, encoded once per configuration

    def mode(self) -> str:
        """Where sidecars go unless a Pod asks otherwise: `native` only where the server is known to take it."""
        mode = self.settings.default_mode(self.server_version)
        return "container" if mode == "native" and native_fallback(self.server_version) else mode

    async def review(self, request: Request) -> dict[str, Any]:
        """The reply; never raises: a bug of ours admits the Pod unchanged, loudly (log, metric, warning)."""
        if not request.is_pod_create or request.object is None:
            return answer(request, None)
        started = time.perf_counter_ns()
        try:
            outcome = self._decide(request.object, request.namespace)
            if isinstance(outcome, Deny) and outcome.missing is not None:  # the only admission that may wait
                outcome = await self._looked_up(outcome.missing, request.object, request.namespace, outcome)
            reply, name = answer(request, outcome), _outcome_name(outcome)
        except Exception:
            log.exception("admission failed for uid %s; pod admitted unchanged", clip(request.uid, 128))
            outcome, name = INTERNAL_ERROR, "error"
            reply = answer(request, outcome)
        micros = (time.perf_counter_ns() - started) // 1000
        admitted = Admitted(request, outcome, name, micros)
        for observer in self.observers:
            try:
                observer(admitted)
            except Exception:
                log.exception("observer %r failed", observer)
        return reply

    async def _looked_up(self, missing: ObjectRef, pod: Mapping[str, Any], namespace: str, denied: Outcome) -> Outcome:
        """A second `decide` when one live lookup finds what the Pod names and the snapshot lacked."""
        if await self.source.lookup(missing) is None:
            return denied
        outcome = self._decide(pod, namespace)
        if not isinstance(outcome, Deny):
            log.info("found %s by a live lookup (created or made ready just before the pod)", missing)
        return outcome

    def _decide(self, pod: Mapping[str, Any], namespace: str) -> Outcome:
        return decide(pod, namespace, self.source.index, self.settings, self.server_version, rendered=self.rendered)


def _outcome_name(outcome: Outcome) -> str:
    if isinstance(outcome, Deny):
        return "denied"
    if isinstance(outcome, Skip):
        return "skipped"
    return "injected"
