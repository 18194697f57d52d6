"""Microsoft Graph calls for agent identities, made as one blueprint (its access token).

Retries what Graph asks to retry: 429 and 503 after `Retry-After`, other 5xx and transport errors
after an exponential backoff with jitter. Everything else is a `GraphError` carrying Graph's code.

A create is the exception: it takes no client key, so a retried create whose first answer was lost
makes a second identity. It is tried once; the error says whether it may have happened anyway
(`outcome_unknown`), and the provisioner looks for it before it creates again.
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


# Transport errors that mean the request never left: nothing can have happened.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        outcome_unknown: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.outcome_unknown = outcome_unknown  # the request may have been carried out (no answer, or 5xx)
        self.retry_after = retry_after  # what Graph asked for on 429 and 503


@dataclass(frozen=True)
class Retrying:
    retry_after_max: float = 60.0
    backoff: float = 0.5
    attempts: int = ATTEMPTS
    sleep: Callable[[float], None] = time.sleep


class Graph:
    """One HTTP connection pool for every blueprint; `as_blueprint` binds a token source."""

    def __init__(
        self,
        base_url: str,
        verify: ssl.SSLContext | bool,
        timeout: float,
        retrying: Retrying,
        observe: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(verify=verify, timeout=timeout, headers=HEADERS)
        self.retrying = retrying
        self.observe = observe  # (method, status or "error", seconds) for each HTTP request

    def as_blueprint(self, token: Callable[[], str]) -> BlueprintGraph:
        return BlueprintGraph(self, token)

    def close(self) -> None:
        self.http.close()

    def request(
        self, token: Callable[[], str], method: str, url: str, *, once: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """`once`: a single attempt, for requests that must not be repeated blindly (a create)."""
        if not url.startswith("https://"):
            url = self.base_url + url
        delay = self.retrying.backoff
        attempts = 1 if once else self.retrying.attempts
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = self._send(token, method, url, **kwargs)
            except httpx.TransportError as error:
                if last:
                    unknown = not isinstance(error, NOT_SENT)
                    raise GraphError(0, "TransportError", f"{type(error).__name__}: {error}", unknown) from None
                self._wait(delay, f"{method} {url}: {type(error).__name__}")
                delay *= 2
                continue
            if response.status_code in (429, 503) and not last:
                self._wait(self._retry_after(response) or delay, f"{method} {url}: {response.status_code}")
                delay *= 2
                continue
            if response.status_code >= 500 and not last:
                self._wait(delay, f"{method} {url}: {response.status_code}")
                delay *= 2
                continue
            if response.status_code >= 400:
                raise _error(response, self._retry_after(response))
            return response
        raise AssertionError("unreachable")

    def _send(self, token: Callable[[], str], method: str, url: str, **kwargs: Any) -> httpx.Response:
        bearer = token()  # a token request is not a Graph request: not timed here
        started = time.monotonic()
        status = "error"
        try:
            response = self.http.request(method, url, headers={"Authorization": f"Bearer {bearer}"}, **kwargs)
            status = str(response.status_code)
            return response
        finally:
            if self.observe is not None:
                self.observe(method, status, time.monotonic() - started)

    def _retry_after(self, response: httpx.Response) -> float | None:
        header = response.headers.get("Retry-After", "")
        if not header.replace(".", "", 1).isdigit():
            return None
        return min(float(header), self.retrying.retry_after_max)

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
        """One attempt, never repeated here (see the module's docstring)."""
        created: Json = self._call("POST", f"/servicePrincipals/{CAST}", json=body, once=True).json()
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


def _error(response: httpx.Response, retry_after: float | None) -> GraphError:
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
    except ValueError:
        error = {}
    code = str(error.get("code") or f"HTTP{response.status_code}")
    message = str(error.get("message") or response.reason_phrase)
    unknown = response.status_code >= 500 or response.status_code == 408  # it may have been done
    return GraphError(response.status_code, code[:100], message[:300], unknown, retry_after)
