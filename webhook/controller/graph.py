"""Microsoft Graph calls for agent identities, made as one blueprint (its access token).

Retries what Graph asks to retry: 429 and 503 after `Retry-After`, other 5xx and transport errors
after an exponential backoff with jitter. Everything else is a `GraphError` carrying Graph's code.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

CAST = "microsoft.graph.agentIdentity"
HEADERS = {"OData-Version": "4.0", "Accept": "application/json"}
ATTEMPTS = 6

Json = dict[str, Any]


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Retrying:
    retry_after_max: float = 60.0
    backoff: float = 0.5
    attempts: int = ATTEMPTS
    sleep: Callable[[float], None] = time.sleep


class Graph:
    """One HTTP connection pool for every blueprint; `as_blueprint` binds a token source."""

    def __init__(self, base_url: str, verify: ssl.SSLContext | bool, timeout: float, retrying: Retrying) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(verify=verify, timeout=timeout, headers=HEADERS)
        self.retrying = retrying

    def as_blueprint(self, token: Callable[[], str]) -> BlueprintGraph:
        return BlueprintGraph(self, token)

    def close(self) -> None:
        self.http.close()

    def request(self, token: Callable[[], str], method: str, url: str, **kwargs: Any) -> httpx.Response:
        if not url.startswith("https://"):
            url = self.base_url + url
        delay = self.retrying.backoff
        for attempt in range(1, self.retrying.attempts + 1):
            last = attempt == self.retrying.attempts
            try:
                response = self.http.request(method, url, headers={"Authorization": f"Bearer {token()}"}, **kwargs)
            except httpx.TransportError as error:
                if last:
                    raise GraphError(0, "TransportError", f"{type(error).__name__}: {error}") from None
                self._wait(delay, f"{method} {url}: {type(error).__name__}")
                delay *= 2
                continue
            if response.status_code in (429, 503) and not last:
                self._wait(self._retry_after(response, delay), f"{method} {url}: {response.status_code}")
                delay *= 2
                continue
            if response.status_code >= 500 and not last:
                self._wait(delay, f"{method} {url}: {response.status_code}")
                delay *= 2
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response
        raise AssertionError("unreachable")

    def _retry_after(self, response: httpx.Response, fallback: float) -> float:
        header = response.headers.get("Retry-After", "")
        seconds = float(header) if header.replace(".", "", 1).isdigit() else fallback
        return min(seconds, self.retrying.retry_after_max)

    def _wait(self, seconds: float, why: str) -> None:
        seconds = seconds * random.uniform(1.0, 1.25)  # jitter upwards: never earlier than asked
        log.info("graph retry in %.1fs after %s", seconds, why)
        self.retrying.sleep(seconds)


class BlueprintGraph:
    def __init__(self, graph: Graph, token: Callable[[], str]) -> None:
        self.graph = graph
        self.token = token

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.graph.request(self.token, method, url, **kwargs)

    def create(self, body: Json) -> Json:
        created: Json = self._call("POST", f"/servicePrincipals/{CAST}", json=body).json()
        return created

    def get(self, object_id: str) -> Json | None:
        """The identity, or None when Graph says it does not exist (deleted, or not replicated yet)."""
        try:
            found: Json = self._call("GET", f"/servicePrincipals/{object_id}/{CAST}").json()
        except GraphError as error:
            if error.status == 404:
                return None
            raise
        return found

    def list_for_blueprint(self, app_id: str) -> Iterator[Json]:
        """Every agent identity of the blueprint, following `@odata.nextLink` page by page."""
        url: str | None = f"/servicePrincipals/{CAST}"
        params: dict[str, str] | None = {"$filter": f"agentIdentityBlueprintId eq '{app_id}'", "$top": "100"}
        while url:
            page = self._call("GET", url, params=params).json()
            yield from page.get("value", [])
            url, params = page.get("@odata.nextLink"), None

    def update(self, object_id: str, patch: Json) -> None:
        self._call("PATCH", f"/servicePrincipals/{object_id}/{CAST}", json=patch)

    def delete(self, object_id: str) -> bool:
        """A soft delete; False when it was gone already."""
        try:
            self._call("DELETE", f"/servicePrincipals/{object_id}/{CAST}")
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return True

    def sponsors(self, object_id: str) -> list[str]:
        page = self._call("GET", f"/servicePrincipals/{object_id}/{CAST}/sponsors").json()
        return [str(item["id"]).lower() for item in page.get("value", [])]

    def add_sponsor(self, object_id: str, reference: str) -> None:
        self._call("POST", f"/servicePrincipals/{object_id}/{CAST}/sponsors/$ref", json={"@odata.id": reference})

    def remove_sponsor(self, object_id: str, sponsor_id: str) -> None:
        self._call("DELETE", f"/servicePrincipals/{object_id}/{CAST}/sponsors/{sponsor_id}/$ref")


def _error(response: httpx.Response) -> GraphError:
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
    except ValueError:
        error = {}
    code = str(error.get("code") or f"HTTP{response.status_code}")
    message = str(error.get("message") or response.reason_phrase)
    return GraphError(response.status_code, code[:100], message[:300])
