"""Entra's token endpoint for the client credentials grant, as a blueprint uses it.

`POST {authority}/{tenant}/oauth2/v2.0/token` with `client_secret`, or with a client assertion
(`client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`) that is verified
for real: RS256 signature against the issuer's published keys (the e2e control plane's
`/openid/v1/jwks`), then issuer, subject and audience against the federated credentials configured
on the app (at most 20, issuer+subject unique), and expiry. Failures carry Entra's AADSTS
codes in its OAuth error shape. Tokens it issues are JWTs signed by its own key, whose `roles` claim
holds exactly the application permissions the app can hold (`tests/doubles/permissions.py`): a
blueprint `AgentIdentity.CreateAsManager`, another app what an admin granted it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.doubles.https import Request, Response
from tests.doubles.permissions import BLUEPRINT_ROLES

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_SCOPES = {"https://graph.microsoft.com/.default", "00000003-0000-0000-c000-000000000000/.default"}
MAX_FEDERATED_CREDENTIALS = 20
TOKEN_SECONDS = 3600


class EntraRefusal(ValueError):
    """What Entra's admin APIs refuse when configuring a blueprint (e.g. a 21st federated credential)."""


@dataclass(frozen=True)
class FederatedCredential:
    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...] = ("api://AzureADTokenExchange",)


@dataclass
class App:
    """An app registration and its service principal in the tenant: a blueprint, or a plain app."""

    tenant: str
    app_id: str
    principal_id: str
    secrets: set[str] = field(default_factory=set)
    federated: list[FederatedCredential] = field(default_factory=list)
    blueprint: bool = True
    roles: set[str] = field(default_factory=lambda: set(BLUEPRINT_ROLES))  # application permissions held


@dataclass(frozen=True)
class Issued:
    app_id: str
    method: str  # "client_secret" or "client_assertion"
    subject: str | None = None


class EntraDouble:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.apps: dict[str, App] = {}
        self.issuer_keys: dict[str, list[dict[str, Any]]] = {}
        self.issued: list[Issued] = []
        self.base_url = ""
        self._lock = threading.Lock()

    # -- configuration, as an admin would do it in Entra ------------------------------------

    def add_blueprint(self, tenant: str, app_id: str, secret: str | None = None) -> App:
        blueprint = App(tenant, app_id, str(uuid.uuid4()), {secret} if secret else set())
        self.apps[app_id] = blueprint
        return blueprint

    def add_app(self, tenant: str, app_id: str, secret: str | None = None) -> App:
        """A plain app registration (not a blueprint), holding no application permission until granted."""
        app = App(tenant, app_id, str(uuid.uuid4()), {secret} if secret else set(), blueprint=False, roles=set())
        self.apps[app_id] = app
        return app

    def grant(self, app_id: str, role: str) -> None:
        """An admin's consent to an application permission (an app role assignment on Microsoft Graph)."""
        app = self.apps[app_id]
        if app.blueprint:
            raise EntraRefusal("application permissions cannot be granted to an agent identity blueprint principal")
        app.roles.add(role)

    def add_federated_credential(self, app_id: str, credential: FederatedCredential) -> None:
        blueprint = self.apps[app_id]
        if len(blueprint.federated) >= MAX_FEDERATED_CREDENTIALS:
            raise EntraRefusal(f"a blueprint holds at most {MAX_FEDERATED_CREDENTIALS} federated credentials")
        if any((f.issuer, f.subject) == (credential.issuer, credential.subject) for f in blueprint.federated):
            raise EntraRefusal("a federated credential with this issuer and subject exists already")
        blueprint.federated.append(credential)

    def trust_issuer(self, issuer: str, jwks: dict[str, Any]) -> None:
        """Entra reads an issuer's keys from its OIDC discovery; the tests hand them over."""
        self.issuer_keys[issuer] = list(jwks["keys"])

    # -- the endpoint ------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        tenant = parts[0] if parts else ""
        if request.method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return self._discovery(tenant)
        if request.method == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._token(tenant, request)
        return Response(404, {"error": "not_found", "error_description": f"no such endpoint {request.path}"})

    def _discovery(self, tenant: str) -> Response:
        if not self._tenant_known(tenant):
            return _error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{self.base_url}/{tenant}"
        return Response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "issuer": f"{base}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            },
        )

    def _tenant_known(self, tenant: str) -> bool:
        return any(app.tenant == tenant for app in self.apps.values())

    def _token(self, tenant: str, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _error(400, "invalid_request", 900144, "The request body must contain the parameter 'grant_type'.")
        form = request.form()
        if not self._tenant_known(tenant):
            return _error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        for required in ("grant_type", "client_id", "scope"):
            if not form.get(required):
                return _error(
                    400, "invalid_request", 900144, f"The request body must contain the parameter '{required}'."
                )
        if form["grant_type"] != "client_credentials":
            return _error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        blueprint = self.apps.get(form["client_id"])
        if blueprint is None or blueprint.tenant != tenant:
            return _error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form['client_id']}' was not found in the directory '{tenant}'.",
            )
        if set(form["scope"].split()) - GRAPH_SCOPES or not form["scope"].strip():
            return _error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form['scope']} is not valid. Client credential flows must have a "
                "scope value with /.default suffixed to the resource identifier.",
            )
        if "client_assertion" in form:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return _error(
                    400,
                    "invalid_request",
                    900144,
                    "The request body must contain the parameter 'client_assertion_type'.",
                )
            refused = self._check_assertion(blueprint, form["client_assertion"])
            if isinstance(refused, Response):
                return refused
            return self._issue(blueprint, Issued(blueprint.app_id, "client_assertion", refused))
        if "client_secret" in form:
            if form["client_secret"] not in blueprint.secrets:
                return _error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                    f"secret value, not the client secret ID, for a secret added to app '{blueprint.app_id}'.",
                )
            return self._issue(blueprint, Issued(blueprint.app_id, "client_secret"))
        return _error(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )

    def _check_assertion(self, blueprint: App, assertion: str) -> Response | str:
        """The assertion's subject when Entra would accept it, else the refusal."""
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return _error(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        issuer, subject, audience = claims.get("iss"), claims.get("sub"), claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        by_issuer = [f for f in blueprint.federated if f.issuer == issuer]
        if not by_issuer:
            return _error(
                400,
                "invalid_client",
                700211,
                f"No matching federated identity record found for presented assertion issuer '{issuer}'. Please "
                "check your federated identity credential Subject, Audience and Issuer against the presented "
                "assertion.",
            )
        matching = [f for f in by_issuer if f.subject == subject]
        if not matching:
            return _error(
                400,
                "invalid_client",
                700213,
                f"No matching federated identity record found for presented assertion subject '{subject}'. Please "
                "check your federated identity credential Subject, Audience and Issuer against the presented "
                "assertion.",
            )
        credential = matching[0]
        if not set(audiences) & set(credential.audiences):
            return _error(
                400,
                "invalid_client",
                700212,
                f"No matching federated identity record found for presented assertion audience '{audience}'.",
            )
        keys = [k for k in self.issuer_keys.get(str(issuer), []) if k.get("kid") == header.get("kid")]
        try:
            if not keys or header.get("alg") != "RS256":
                raise jwt.InvalidSignatureError("no key")
            jwt.decode(
                assertion,
                jwt.PyJWK(keys[0]).key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iss": False},
            )
        except jwt.PyJWTError:
            return _error(400, "invalid_client", 700027, "Client assertion failed signature validation.")
        now = time.time()
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now or claims.get("nbf", 0) > now + 300:
            return _error(
                400,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: {_stamp(now)}, expiry time of "
                f"assertion {_stamp(float(claims.get('exp', 0)))}.",
            )
        return str(subject)

    def _issue(self, blueprint: App, issued: Issued) -> Response:
        now = int(time.time())
        claims = {
            "aud": GRAPH_AUDIENCE,
            "iss": f"https://sts.windows.net/{blueprint.tenant}/",
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_SECONDS,
            "appid": blueprint.app_id,
            "azp": blueprint.app_id,
            "tid": blueprint.tenant,
            "oid": blueprint.principal_id,
            "sub": blueprint.principal_id,
            "idtyp": "app",
            **({"roles": sorted(blueprint.roles)} if blueprint.roles else {}),  # Entra leaves out an empty claim
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "double"})
        with self._lock:
            self.issued.append(issued)
        return Response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "ext_expires_in": TOKEN_SECONDS,
                "access_token": token,
            },
        )

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """For the Graph double: the claims of a token this endpoint issued, or jwt.PyJWTError."""
        claims: dict[str, Any] = jwt.decode(token, self.key.public_key(), algorithms=["RS256"], audience=GRAPH_AUDIENCE)
        return claims


def _stamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")


def _error(status: int, error: str, code: int, text: str) -> Response:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return Response(
        status,
        {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {timestamp}",
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        },
    )
