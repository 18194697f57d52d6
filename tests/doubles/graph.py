"""Microsoft Graph v1.0 for agent identities, as a caller with an application token sees it.

Bodies are checked against the property names and types of the published v1.0 metadata
(`agent-identity.schema.json` beside this file). What the double enforces: a valid bearer token
from the Entra double, and for every operation the application permissions its v1.0 reference page
lists (`permissions.py`, read from the token's `roles`), else Graph's 403
`Authorization_RequestDenied`: a blueprint (`AgentIdentity.CreateAsManager`) creates under its own
app id and gets, updates and deletes its own identities, but cannot list them or touch sponsors.
Then: `OData-Version: 4.0` on writes; required `displayName` and sponsors (1..100, at most 5
groups, existing users or groups); `agentIdentityBlueprintId` equal to a blueprint caller's appId
(else 403 `Error_AgentIdentitySelfCreateRequired`); a blueprint principal that exists
(`AgentIdentity_AgentBlueprintPrincipalDoesNotExist`); 250 identities per blueprint counting
soft-deleted ones (`AgentIdentity_LimitExceeded`); soft delete; lists in pages of at most 100 with
`@odata.nextLink`, filtered on `agentIdentityBlueprintId eq` or `tags/any(t:t eq ...)`. An agent
identity's `appId` is its `id`. On demand (`faulty`): 429 with `Retry-After`; 404 on reads of an
object for some seconds after its creation; new objects missing from lists for some seconds
(replication lag); a create that is stored but never answered (the connection is held, then
dropped), as when a response is lost in transit; and 400 for any `$filter` (a server that does not
support it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jwt

from tests.doubles.entra import EntraDouble
from tests.doubles.https import Request, Response
from tests.doubles.permissions import CREATE_AS_MANAGER, OPERATIONS

SCHEMA = json.loads((Path(__file__).parent / "agent-identity.schema.json").read_text())
CAST = "microsoft.graph.agentIdentity"
ODATA_TYPE = "#microsoft.graph.agentIdentity"
LIMIT = 250
PAGE = 100
MAX_SPONSORS, MAX_GROUPS = 100, 5
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_BLUEPRINT_FILTER = re.compile(r"^agentIdentityBlueprintId eq '([^']*)'$")
_TAG_FILTER = re.compile(r"^tags/any\(t:t eq '((?:[^']|'')*)'\)$")
_REF = re.compile(r"^(https://[^/]+)/v1\.0/(users|groups|directoryObjects)/([^/]+)$")


@dataclass
class Identity:
    body: dict[str, Any]
    sponsors: list[str]
    created: float
    deleted: float | None = None

    @property
    def id(self) -> str:
        return str(self.body["id"])


@dataclass
class Faults:
    throttle: int = 0  # answer this many next requests with 429
    retry_after: int = 1
    replication_seconds: float = 0.0  # reads of an object 404 for this long after its creation
    list_lag_seconds: float = 0.0  # lists leave an object out for this long after its creation
    withhold_creates: int = 0  # store this many next creates, but never answer them
    refuse_filters: bool = False  # answer any $filter with 400, as a server that does not support it


@dataclass(frozen=True)
class Caller:
    app_id: str
    roles: frozenset[str]


@dataclass
class GraphDouble:
    entra: EntraDouble
    users: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    principals: set[str] = field(default_factory=set)  # blueprint appIds with a blueprint principal
    identities: dict[str, Identity] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    requests: list[tuple[str, str]] = field(default_factory=list)
    withheld: list[str] = field(default_factory=list)  # ids of creates stored but never answered
    base_url: str = ""
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _release: threading.Event = field(default_factory=threading.Event)

    @contextlib.contextmanager
    def faulty(self, **faults: Any) -> Iterator[Faults]:
        """These faults for the block; afterwards none, and every withheld answer's connection dropped."""
        self.faults = dataclasses.replace(Faults(), **faults)
        try:
            yield self.faults
        finally:
            self.faults = Faults()
            self._release.set()
            self._release = threading.Event()

    # -- inspection helpers for tests --------------------------------------------------------

    def of_blueprint(self, app_id: str, deleted: bool = False) -> list[Identity]:
        with self._lock:
            return [
                found
                for found in self.identities.values()
                if found.body["agentIdentityBlueprintId"] == app_id and (found.deleted is not None) == deleted
            ]

    def seed(self, app_id: str, display_name: str, tags: list[str] | None = None, deleted: bool = False) -> Identity:
        """An identity that exists before the test (made by someone else, or earlier)."""
        body = self._new_body(app_id, {"displayName": display_name, "tags": tags or []})
        found = Identity(body, [next(iter(self.users))] if self.users else [], 0.0, time.time() if deleted else None)
        with self._lock:
            self.identities[found.id] = found
        return found

    # -- the endpoint ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.requests.append((request.method, request.path))
            if self.faults.throttle > 0:
                self.faults.throttle -= 1
                response = _error(429, "TooManyRequests", "Too many requests, retry after the time given.")
                response.headers["Retry-After"] = str(self.faults.retry_after)
                return response
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        parts = request.path.strip("/").split("/")
        if parts[:1] != ["v1.0"]:
            return _error(400, "BadRequest", f"Invalid version: {parts[:1]}")
        route = parts[1:]
        with self._lock:
            return self._route(request, route, caller)

    def _caller(self, request: Request) -> Caller | Response:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return _error(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = self.entra.verify_access_token(header.removeprefix("Bearer "))
        except jwt.ExpiredSignatureError:
            return _error(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        except jwt.PyJWTError as error:
            return _error(401, "InvalidAuthenticationToken", f"Access token validation failure: {error}.")
        return Caller(str(claims["appid"]), frozenset(claims.get("roles") or []))

    def _route(self, request: Request, route: list[str], caller: Caller) -> Response:
        method = request.method
        if route == ["servicePrincipals", CAST]:
            if method == "POST":
                if not OPERATIONS["create"].allows(caller.roles, own=True):
                    return _denied()
                return self._create(request, caller)
            if method == "GET":
                return self._list(request, caller) if OPERATIONS["list"].allows(caller.roles, own=False) else _denied()
        if len(route) >= 3 and route[0] == "servicePrincipals" and route[2] == CAST:
            operation = _operation(method, route[3:])
            if operation is None:
                return _error(400, "BadRequest", f"Unsupported request {method} on '{'/'.join(route)}'.")
            if not OPERATIONS[operation].allows(caller.roles, own=True):
                return _denied()  # no permission for this call at all
            found = self.identities.get(route[1])
            if found is None or found.deleted is not None or self._replicating(found):
                return _not_found(route[1])
            if not OPERATIONS[operation].allows(
                caller.roles, own=found.body["agentIdentityBlueprintId"] == caller.app_id
            ):
                return _denied()  # AgentIdentity.CreateAsManager, on another blueprint's identity
            rest = route[3:]
            if not rest:
                return self._one(request, found)
            return self._sponsors(request, found, rest[1:])
        return _error(400, "BadRequest", f"Resource not found for the segment '{'/'.join(route)}'.")

    def _replicating(self, found: Identity) -> bool:
        return time.time() - found.created < self.faults.replication_seconds

    def _lagging(self, found: Identity) -> bool:
        return time.time() - found.created < self.faults.list_lag_seconds

    def _odata_version(self, request: Request) -> Response | None:
        if request.headers.get("odata-version") != "4.0":
            return _error(
                400,
                "BadRequest",
                "The request uses the microsoft.graph.agentIdentity cast and must send the header OData-Version: 4.0.",
            )
        return None

    def _create(self, request: Request, caller: Caller) -> Response:
        refused = self._odata_version(request)
        if refused:
            return refused
        body = request.json()
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "Empty Payload. JSON content expected.")
        problem = _check_body(body, creating=True)
        if problem:
            return _error(400, "Request_BadRequest", problem)
        sponsors = self._sponsor_refs(body.get("sponsors@odata.bind"))
        if isinstance(sponsors, Response):
            return sponsors
        blueprint = body["agentIdentityBlueprintId"]
        others = OPERATIONS["create"].allows(caller.roles - {CREATE_AS_MANAGER}, own=False)  # Create.All and up
        if blueprint != caller.app_id and not others:
            return _error(
                403,
                "Error_AgentIdentitySelfCreateRequired",
                "Applications can only create agent identities under themselves. The provided "
                "AgentIdentityBlueprintId doesn't match the calling application's AppId.",
            )
        if blueprint not in self.principals:
            return _error(
                400,
                "AgentIdentity_AgentBlueprintPrincipalDoesNotExist",
                "The required agent identity blueprint principal doesn't exist for the specified agent identity "
                "blueprint ID.",
            )
        used = len(self.of_blueprint(blueprint)) + len(self.of_blueprint(blueprint, deleted=True))
        if used >= LIMIT:
            return _error(
                400,
                "AgentIdentity_LimitExceeded",
                "You've reached the maximum number of agent identities allowed including active and soft-deleted "
                "entries. To add more, you must permanently delete unneeded agent identities.",
            )
        fields = {k: v for k, v in body.items() if "@" not in k}
        created = Identity(self._new_body(blueprint, fields), sponsors, time.time())
        self.identities[created.id] = created
        if self.faults.withhold_creates > 0:
            self.faults.withhold_creates -= 1
            self.withheld.append(created.id)
            return Response(0, withheld=self._release)
        return Response(
            201, {"@odata.context": self._context(), **created.body}, {"Location": self._location(created.id)}
        )

    def _new_body(self, app_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        object_id = str(uuid.uuid4())
        return {
            "@odata.type": ODATA_TYPE,
            "id": object_id,
            "appId": object_id,  # an agent identity's client id is its object id
            "accountEnabled": True,
            "createdByAppId": app_id,
            "createdDateTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "disabledByMicrosoftStatus": None,
            "servicePrincipalType": "ServiceIdentity",
            "tags": [],
            **fields,
            "agentIdentityBlueprintId": app_id,
        }

    def _sponsor_refs(self, refs: Any) -> list[str] | Response:
        if not isinstance(refs, list) or not refs:
            return _error(400, "Request_BadRequest", "No sponsor specified. An agent identity needs at least one.")
        ids: list[str] = []
        groups = 0
        for ref in refs:
            match = _REF.fullmatch(ref) if isinstance(ref, str) else None
            if match is None or match.group(1) not in ("https://graph.microsoft.com", self.base_url):
                return _error(400, "Request_BadRequest", f"Invalid object identifier '{ref}'.")
            _, kind, object_id = match.groups()
            is_group = object_id in self.groups
            if (kind == "users" and object_id not in self.users) or (kind == "groups" and not is_group):
                return _not_found(object_id)
            if kind == "directoryObjects" and object_id not in self.users and not is_group:
                return _not_found(object_id)
            groups += is_group
            ids.append(object_id)
        if len(ids) > MAX_SPONSORS or groups > MAX_GROUPS:
            return _error(
                400,
                "Request_BadRequest",
                f"An agent identity can have at most {MAX_SPONSORS} sponsors, of which at most {MAX_GROUPS} groups.",
            )
        return ids

    def _list(self, request: Request, caller: Caller) -> Response:
        """Every agent identity of the tenant the caller may read (it holds Read.All or ReadWrite.All)."""
        del caller
        query = request.query.get("$filter")
        keep = _filter(query) if query is not None and not self.faults.refuse_filters else None
        if query is not None and keep is None:
            return _error(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified.")
        top = request.query.get("$top", str(PAGE))
        if not top.isdigit() or not 1 <= int(top) <= PAGE:
            return _error(
                400, "Request_BadRequest", f"Invalid page size specified: '{top}'. Must be between 1 and 100."
            )
        start = int(request.query.get("$skiptoken", "0") or 0)
        visible = [
            found
            for found in self.identities.values()
            if found.deleted is None and not self._lagging(found) and (keep is None or keep(found.body))
        ]
        items = sorted(visible, key=lambda found: found.id)
        page = items[start : start + int(top)]
        body: dict[str, Any] = {"@odata.context": self._context(), "value": [found.body for found in page]}
        if request.query.get("$count") == "true":
            body["@odata.count"] = len(items)
        if start + int(top) < len(items):
            params = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query = urlencode(params | {"$skiptoken": str(start + int(top))}, quote_via=quote)
            body["@odata.nextLink"] = f"{self.base_url}/v1.0/servicePrincipals/{CAST}?{query}"
        return Response(200, body)

    def _one(self, request: Request, found: Identity) -> Response:
        if request.method == "GET":
            return Response(200, {"@odata.context": self._context("/$entity"), **found.body})
        refused = self._odata_version(request)
        if refused:
            return refused
        if request.method == "PATCH":
            body = request.json()
            if not isinstance(body, dict):
                return _error(400, "BadRequest", "Empty Payload. JSON content expected.")
            problem = _check_body(body, creating=False)
            if problem:
                return _error(400, "Request_BadRequest", problem)
            found.body.update({k: v for k, v in body.items() if "@" not in k})
            return Response(204)
        if request.method == "DELETE":
            found.deleted = time.time()
            return Response(204)
        return _error(405, "Request_BadRequest", f"The method {request.method} is not allowed here.")

    def _sponsors(self, request: Request, found: Identity, rest: list[str]) -> Response:
        if request.method == "GET" and not rest:
            value = [
                {"@odata.type": "#microsoft.graph.group" if s in self.groups else "#microsoft.graph.user", "id": s}
                for s in found.sponsors
            ]
            return Response(200, {"value": value})
        refused = self._odata_version(request)
        if refused:
            return refused
        if request.method == "POST" and rest == ["$ref"]:
            body = request.json()
            ref = body.get("@odata.id") if isinstance(body, dict) and len(body) == 1 else None
            ids = self._sponsor_refs([ref])
            if isinstance(ids, Response):
                return ids
            if ids[0] in found.sponsors:
                return _error(
                    400,
                    "Request_BadRequest",
                    "One or more added object references already exist for the following "
                    f"modified properties: 'sponsors'. ({ids[0]})",
                )
            added = self._sponsor_refs(
                [f"https://graph.microsoft.com/v1.0/directoryObjects/{s}" for s in [*found.sponsors, ids[0]]]
            )
            if isinstance(added, Response):
                return added
            found.sponsors.append(ids[0])
            return Response(204)
        if request.method == "DELETE" and len(rest) == 2 and rest[1] == "$ref":
            if rest[0] not in found.sponsors:
                return _not_found(rest[0])
            if len(found.sponsors) == 1:
                return _error(400, "Request_BadRequest", "No sponsor specified. An agent identity needs at least one.")
            found.sponsors.remove(rest[0])
            return Response(204)
        return _error(400, "BadRequest", "Unsupported sponsors request.")

    def _context(self, suffix: str = "") -> str:
        return f"https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/{CAST}{suffix}"

    def _location(self, object_id: str) -> str:
        return f"{self.base_url}/v1.0/servicePrincipals/{object_id}/{CAST}"


_EDM_CHECKS = {
    "Edm.String": lambda v: isinstance(v, str),
    "Edm.Boolean": lambda v: isinstance(v, bool),
    "Edm.Guid": lambda v: isinstance(v, str) and _GUID.fullmatch(v) is not None,
    "Edm.DateTimeOffset": lambda v: isinstance(v, str),
    "Collection(Edm.String)": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
}


def _check_body(body: dict[str, Any], creating: bool) -> str | None:
    """The first problem Graph would report with this request body, by the published schema."""
    properties: dict[str, str] = SCHEMA["properties"]
    navigation: dict[str, str] = SCHEMA["navigationProperties"]
    for name, value in body.items():
        if name == "@odata.type":
            if value != ODATA_TYPE:
                return f"A type named '{value}' could not be resolved by the model for this resource."
            continue
        if name.endswith("@odata.bind"):
            if name.removesuffix("@odata.bind") not in navigation or not creating:
                return f"Property '{name}' does not exist on type '{SCHEMA['entityType']}' or cannot be bound here."
            continue
        if name not in properties:
            return f"Property '{name}' does not exist on type '{SCHEMA['entityType']}'."
        if name in SCHEMA["readOnly"]:
            return f"Property '{name}' is read-only and cannot be set."
        if name == "agentIdentityBlueprintId" and not creating:
            return "Property 'agentIdentityBlueprintId' cannot be changed."
        kind = properties[name]
        check = _EDM_CHECKS.get(kind)
        if value is not None and (check is None or not check(value)):
            return f"Cannot convert the literal '{str(value)[:40]}' to the expected type '{kind}'."
    if creating:
        for required in ("displayName", "agentIdentityBlueprintId"):
            if not isinstance(body.get(required), str) or not body[required]:
                return f"The property '{required}' is required to create an agent identity."
    return None


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _not_found(object_id: str) -> Response:
    return _error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.",
    )


def _operation(method: str, rest: list[str]) -> str | None:
    """The row of the permission table a request on one identity falls under."""
    if not rest:
        return {"GET": "get", "PATCH": "update", "DELETE": "delete"}.get(method)
    if rest == ["sponsors"] and method == "GET":
        return "list sponsors"
    if rest == ["sponsors", "$ref"] and method == "POST":
        return "add sponsor"
    if len(rest) == 3 and rest[0] == "sponsors" and rest[2] == "$ref" and method == "DELETE":
        return "remove sponsor"
    return None


def _filter(clause: str) -> Callable[[dict[str, Any]], bool] | None:
    """The filters the double understands: on the blueprint's app id, and on one tag."""
    if by_blueprint := _BLUEPRINT_FILTER.fullmatch(clause):
        app_id = by_blueprint.group(1)
        return lambda body: body["agentIdentityBlueprintId"] == app_id
    if by_tag := _TAG_FILTER.fullmatch(clause):
        tag = by_tag.group(1).replace("''", "'")
        return lambda body: tag in body.get("tags", [])
    return None


def _denied() -> Response:
    return _error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _error(status: int, code: str, message: str) -> Response:
    request_id = str(uuid.uuid4())
    inner = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": request_id,
    }
    return Response(
        status, {"error": {"code": code, "message": message, "innerError": inner}}, {"request-id": request_id}
    )
