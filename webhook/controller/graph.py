"""Microsoft Graph calls for agent identities, typed, made with one of two credentials.

`as_blueprint` binds the blueprint's token: it may create an agent identity under its own app id and
get, update and delete by id the ones it made (`AgentIdentity.CreateAsManager`), nothing more.
`as_directory` binds the optional directory app's token (`AgentIdentity.Read.All` or
`AgentIdentity.ReadWrite.All`): it lists identities and reads and changes sponsors. Every error
says which operation failed and as whom, so that a 403 can name the permission that was missing.

Retries what Graph asks to retry: 429 and 503 after `Retry-After`, other 5xx and transport errors
after an exponential backoff with jitter. Everything else is a `GraphError` carrying Graph's code.

A create is the exception: it takes no client key, so a retried create whose first answer was lost
makes a second identity. It is tried once; the error says whether it may have happened anyway
(`outcome_unknown`), and the provisioner resolves it before it creates again.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from webhook.controller.entra import CAST, EntraIdentity, GraphError

__all__ = ["CAST", "BlueprintGraph", "DirectoryGraph", "EntraIdentity", "Graph", "GraphError", "Retrying"]

log = logging.getLogger(__name__)

HEADERS = {"OData-Version": "4.0", "Accept": "application/json"}
ATTEMPTS = 6
PAGE_SIZE = "100"

Json = dict[str, Any]

# Transport errors that mean the request never left: nothing can have happened.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Graph's answers to a query option it does not support.
REFUSED_QUERY = frozenset({"Request_UnsupportedQuery", "BadRequest", "Request_BadRequest"})


@dataclass(frozen=True)
class Retrying:
    retry_after_max: float = 60.0
    backoff: float = 0.5
    attempts: int = ATTEMPTS
    sleep: Callable[[float], None] = time.sleep


class Graph:
    """One HTTP connection pool for every credential; `as_blueprint` and `as_directory` bind a token."""

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
        self.filters_refused = False  # Graph refused a $filter on the list once: filter here from then on

    def as_blueprint(self, app_id: str, token: Callable[[], str]) -> BlueprintGraph:
        return BlueprintGraph(self, f"blueprint {app_id}", token)

    def as_directory(self, app_id: str, token: Callable[[], str]) -> DirectoryGraph:
        return DirectoryGraph(self, f"directory app {app_id}", token)

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
        headers = {"Authorization": f"Bearer {bearer}", **kwargs.pop("headers", {})}
        try:
            response = self.http.request(method, url, headers=headers, **kwargs)
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


class _Bound:
    """Requests as one caller; errors carry the operation and the caller."""

    def __init__(self, graph: Graph, caller: str, token: Callable[[], str]) -> None:
        self.graph = graph
        self.caller = caller
        self.token = token

    def _call(self, operation: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.graph.request(self.token, method, url, **kwargs)
        except GraphError as error:
            error.operation, error.caller = operation, self.caller
            raise

    def _json(self, operation: str, response: httpx.Response) -> object:
        try:
            return response.json()
        except ValueError:
            error = GraphError(response.status_code, "MalformedAnswer", "Graph's answer is not JSON")
            error.operation, error.caller = operation, self.caller
            raise error from None

    def _parse(self, operation: str, value: object) -> EntraIdentity:
        try:
            return EntraIdentity.parse(value)
        except GraphError as error:
            error.operation, error.caller = operation, self.caller
            raise

    def _identity(self, operation: str, response: httpx.Response) -> EntraIdentity:
        return self._parse(operation, self._json(operation, response))


class BlueprintGraph(_Bound):
    """What a blueprint may do with its own agent identities (AgentIdentity.CreateAsManager)."""

    def create(self, body: Json) -> EntraIdentity:
        """One attempt, never repeated here (see the module's docstring)."""
        response = self._call("create", "POST", f"/servicePrincipals/{CAST}", json=body, once=True)
        return self._identity("create", response)

    def get(self, object_id: str) -> EntraIdentity | None:
        """The identity, or None when Graph says it does not exist (deleted, or not replicated yet)."""
        try:
            response = self._call("get", "GET", f"/servicePrincipals/{object_id}/{CAST}")
        except GraphError as error:
            if error.status == 404:
                return None
            raise
        return self._identity("get", response)

    def update(self, object_id: str, patch: Json) -> None:
        self._call("update", "PATCH", f"/servicePrincipals/{object_id}/{CAST}", json=patch)

    def delete(self, object_id: str) -> bool:
        """A soft delete; False when it was gone already."""
        try:
            self._call("delete", "DELETE", f"/servicePrincipals/{object_id}/{CAST}")
        except GraphError as error:
            if error.status == 404:
                return False
            raise
        return True


class DirectoryGraph(_Bound):
    """What the optional directory app may do: list identities (Read.All), read and change sponsors
    (ReadWrite.All)."""

    def marked(self, blueprint_app_id: str, tags: Sequence[str]) -> list[EntraIdentity]:
        """The blueprint's identities carrying one of `tags`, by a `$filter` on the tag; when Graph
        refuses the filter, by every page of the unfiltered list, filtered here."""
        wanted, blueprint = set(tags), blueprint_app_id.lower()
        found: dict[str, EntraIdentity] = {}
        if not self.graph.filters_refused:
            try:
                for tag in dict.fromkeys(tags):
                    quoted = tag.replace("'", "''")
                    for item in self._list({"$filter": f"tags/any(t:t eq '{quoted}')", "$count": "true"}):
                        found[item.id] = item
            except GraphError as error:
                if error.status != 400 or error.code not in REFUSED_QUERY:
                    raise
                log.info("Graph refused a $filter on the tags (%s): filtering the list here from now on", error.code)
                self.graph.filters_refused = True
                found.clear()
        if self.graph.filters_refused:
            found = {item.id: item for item in self._list({})}
        return [item for item in found.values() if item.blueprint_id == blueprint and wanted & set(item.tags)]

    def _list(self, params: dict[str, str]) -> Iterator[EntraIdentity]:
        """Every page, following `@odata.nextLink`; eventual consistency, which tag filters ask for."""
        url: str | None = f"/servicePrincipals/{CAST}"
        query: dict[str, str] | None = {**params, "$top": PAGE_SIZE}
        while url:
            page = self._json("list", self._call("list", "GET", url, params=query,
                                                 headers={"ConsistencyLevel": "eventual"}))  # fmt: skip
            items = page.get("value") if isinstance(page, dict) else None
            for item in items if isinstance(items, list) else []:
                yield self._parse("list", item)
            link = page.get("@odata.nextLink") if isinstance(page, dict) else None
            url, query = (link if isinstance(link, str) else None), None

    def sponsors(self, object_id: str) -> list[str]:
        response = self._call("list sponsors", "GET", f"/servicePrincipals/{object_id}/{CAST}/sponsors")
        page = self._json("list sponsors", response)
        items = page.get("value") if isinstance(page, dict) else None
        return [str(item["id"]).lower() for item in items or [] if isinstance(item, dict) and item.get("id")]

    def add_sponsor(self, object_id: str, reference: str) -> None:
        self._call("add sponsor", "POST", f"/servicePrincipals/{object_id}/{CAST}/sponsors/$ref",
                   json={"@odata.id": reference})  # fmt: skip

    def remove_sponsor(self, object_id: str, sponsor_id: str) -> None:
        self._call("remove sponsor", "DELETE", f"/servicePrincipals/{object_id}/{CAST}/sponsors/{sponsor_id}/$ref")


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
