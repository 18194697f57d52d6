"""The API calls `check` makes, each bounded by a timeout, each answer raw JSON (nothing is decoded into models)."""

from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from webhook.common.kubeapi import Answer, api_errors, call, describe_api_error


class Unreachable(Exception):
    """No answer from the API server at all: a check cannot go on without one."""


@dataclass
class Cluster:
    api: Any
    timeout: float

    def get(self, path: str, query: tuple[tuple[str, str], ...] = ()) -> Answer:
        return self._call("GET", path, query=query)

    def dry_run_create(self, path: str, body: Any) -> Answer:
        """A create that goes through the whole admission chain, our webhook included, and stores nothing."""
        return self._call("POST", path, query=(("dryRun", "All"),), body=body)

    def _call(self, method: str, path: str, **options: Any) -> Answer:
        try:
            return call(self.api, method, path, timeout=self.timeout, **options)
        except api_errors() as error:
            raise Unreachable(describe_api_error(error)) from None

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    def now(self, answer: Answer) -> dt.datetime:
        """The API server's clock (its Date header), so that a Lease is judged as the server judges it."""
        date = answer.headers.get("Date") or answer.headers.get("date")
        if date:
            return email.utils.parsedate_to_datetime(date)
        return dt.datetime.now(dt.UTC)


def path(*parts: str) -> str:
    """An API path from segments, each escaped (names come from the cluster or the user)."""
    return "/" + "/".join(quote(part, safe=":") for part in parts)


def items(answer: Answer) -> list[dict[str, Any]]:
    found = answer.body.get("items") if answer.ok and isinstance(answer.body, dict) else None
    return [item for item in found or [] if isinstance(item, dict)]


def mapping(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (what a malformed field reads as)."""
    return value if isinstance(value, dict) else {}


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {str(key): str(value) for key, value in labels.items()}


def timestamp(text: str | None) -> dt.datetime | None:
    """A Kubernetes time (RFC 3339, MicroTime too)."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
