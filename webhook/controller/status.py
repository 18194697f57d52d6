"""The one place that writes a resource's status and its Events, for either kind.

`write` sends a merge patch of conditions (and other fields) through the status subresource and
returns the resource as the API server answered it; the caller's copy is never changed. `report`
does the same for a condition that explains something, adds an Event when that is news (a new
reason or message) once the status says it, and never raises for a status it could not write.
`report` writes only over the version it judged the news on: a watch cache that is behind (a pass
retried before our own last write came back) gets a 409 and neither a second write nor a second
Event; a write that failed announces nothing, as the next pass announces it when it writes it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from webhook.controller.reconcile import Wanted, is_news, status_of, status_patch

log = logging.getLogger(__name__)

Json = dict[str, Any]


class StatusApi(Protocol):
    def patch_status(
        self, kind: str, namespace: str, name: str, status: Json, resource_version: str | None = None
    ) -> Json: ...

    def event(self, raw: Json, kind: str, reason: str, message: str, warning: bool) -> None: ...


class StatusWriter:
    def __init__(self, kube: StatusApi, now: Callable[[], dt.datetime]) -> None:
        self.kube = kube
        self.now = now

    def write(
        self,
        raw: Json,
        kind: str,
        wanted: Sequence[Wanted],
        extra: Json | None = None,
        guard: bool = False,
        drop: str | None = None,
    ) -> Json:
        """Set these conditions (and `extra`; None deletes a field; `drop` removes a condition). With `guard`,
        only if nothing wrote the resource since it was read (else the API server answers 409, raised as
        ApiException)."""
        metadata = raw["metadata"]
        generation = int(metadata.get("generation") or 0)
        patch = status_patch(status_of(raw), wanted, generation, self.now(), extra, drop)
        version = metadata["resourceVersion"] if guard else None
        updated = self.kube.patch_status(kind, metadata["namespace"], metadata["name"], patch, version)
        status = updated.get("status", {k: v for k, v in patch.items() if v is not None})
        return {**raw, "status": status, "metadata": updated.get("metadata", metadata)}

    def report(
        self,
        raw: Json,
        kind: str,
        wanted: Sequence[Wanted],
        *,
        warning: bool | None = None,
        extra: Json | None = None,
        drop: str | None = None,
    ) -> Json:
        """Write the conditions over the version read; an Event for the first one when it is news (a Warning
        unless it holds). A status that cannot be written is logged (a 409: read again next pass), not raised."""
        first = wanted[0]
        news = is_news(status_of(raw), first)
        try:
            raw = self.write(raw, kind, wanted, extra, guard=True, drop=drop)
        except ApiException as error:
            # Not written: the next pass judges the news again on what is there, so an Event now would be
            # announced twice (a 409: the resource changed since it was read; anything else: logged).
            if error.status != 409:
                log.warning("could not write the status of %s/%s: %s", raw["metadata"].get("namespace"),
                            raw["metadata"].get("name"), error.status)  # fmt: skip
            return raw
        if news:
            self.announce(raw, kind, first, warning)
        return raw

    def announce(self, raw: Json, kind: str, condition: Wanted, warning: bool | None = None) -> None:
        """An Event (and a log line) saying what this condition says: a Warning unless it holds."""
        warning = not condition.status if warning is None else warning
        name = f"{raw['metadata'].get('namespace')}/{raw['metadata'].get('name')}"
        log.log(logging.WARNING if warning else logging.INFO, "%s: %s: %s", name, condition.reason, condition.message)
        self.kube.event(raw, kind, condition.reason, condition.message, warning=warning)
