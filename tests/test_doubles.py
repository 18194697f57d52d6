"""The test doubles refuse what Entra and Graph refuse, with their codes and error shapes."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Doubles
from tests.doubles.entra import ASSERTION_TYPE, EntraRefusal, FederatedCredential
from tests.doubles.permissions import (
    APPLICATION_READ_ALL,
    CREATE_ALL,
    CREATE_AS_MANAGER,
    DELETE_RESTORE_ALL,
    ENABLE_DISABLE_ALL,
    OPERATIONS,
    READ_ALL,
    READ_WRITE_ALL,
)

ISSUER = "https://issuer.example.test"
SUBJECT = "system:serviceaccount:entra-system:entra-webhook-controller"
AUDIENCE = "api://AzureADTokenExchange"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@pytest.fixture
def http(doubles: Doubles) -> Iterator[httpx.Client]:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(doubles.ca_file)), timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def issuer_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def assertion(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": SUBJECT, "aud": [AUDIENCE], "iat": now, "exp": now + 600} | claims
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def trust(doubles: Doubles, key: rsa.RSAPrivateKey) -> None:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    doubles.entra.trust_issuer(ISSUER, {"keys": [public | {"kid": "k1", "alg": "RS256", "use": "sig"}]})


def token_request(http: httpx.Client, doubles: Doubles, tenant: str, **form: str) -> httpx.Response:
    return http.post(f"{doubles.entra_url}/{tenant}/oauth2/v2.0/token", data={"grant_type": "client_credentials",
                     "scope": GRAPH_SCOPE, **form})  # fmt: skip


def aadsts(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    return response.status_code, body["error"], body["error_codes"][0]


def test_a_client_secret_gets_a_graph_token_naming_the_blueprint(http: httpx.Client, doubles: Doubles) -> None:
    tenant, app_id = doubles.blueprint(secret="s3cret")
    response = token_request(http, doubles, tenant, client_id=app_id, client_secret="s3cret")
    assert response.status_code == 200
    claims = doubles.entra.verify_access_token(response.json()["access_token"])
    assert (claims["appid"], claims["azp"], claims["tid"], claims["aud"]) == (
        app_id, app_id, tenant, "https://graph.microsoft.com",
    )  # fmt: skip


def test_a_wrong_client_secret_is_invalid_client_7000215(http: httpx.Client, doubles: Doubles) -> None:
    tenant, app_id = doubles.blueprint(secret="s3cret")
    response = token_request(http, doubles, tenant, client_id=app_id, client_secret="guess")
    assert aadsts(response) == (401, "invalid_client", 7000215)


def test_an_unknown_app_is_700016_and_a_missing_credential_7000218(http: httpx.Client, doubles: Doubles) -> None:
    tenant, app_id = doubles.blueprint(secret="s3cret")
    assert aadsts(token_request(http, doubles, tenant, client_id=str(uuid.uuid4()), client_secret="x"))[2] == 700016
    assert aadsts(token_request(http, doubles, tenant, client_id=app_id)) == (401, "invalid_client", 7000218)


def test_a_scope_without_default_is_refused(http: httpx.Client, doubles: Doubles) -> None:
    tenant, app_id = doubles.blueprint(secret="s")
    response = token_request(http, doubles, tenant, client_id=app_id, client_secret="s", scope="User.Read")
    assert aadsts(response) == (400, "invalid_scope", 1002012)


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"iss": "https://other.example.test"}, 700211),
        ({"sub": "system:serviceaccount:other:sa"}, 700213),
        ({"aud": ["api://other"]}, 700212),
        ({"exp": int(time.time()) - 60}, 700024),
    ],
)
def test_an_assertion_not_matching_a_federated_credential_is_refused_with_its_code(
    http: httpx.Client, doubles: Doubles, issuer_key: rsa.RSAPrivateKey, claims: dict[str, Any], code: int
) -> None:
    tenant, app_id = doubles.blueprint()
    doubles.entra.add_federated_credential(app_id, FederatedCredential("k8s", ISSUER, SUBJECT))
    trust(doubles, issuer_key)
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion(issuer_key, **claims)}
    assert aadsts(token_request(http, doubles, tenant, client_id=app_id, **form)) == (400, "invalid_client", code)


def test_an_assertion_signed_by_another_key_fails_signature_validation(
    http: httpx.Client, doubles: Doubles, issuer_key: rsa.RSAPrivateKey
) -> None:
    tenant, app_id = doubles.blueprint()
    doubles.entra.add_federated_credential(app_id, FederatedCredential("k8s", ISSUER, SUBJECT))
    trust(doubles, issuer_key)
    forged = assertion(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": forged}
    assert aadsts(token_request(http, doubles, tenant, client_id=app_id, **form))[2] == 700027


def test_a_valid_assertion_gets_a_token_and_is_recorded(
    http: httpx.Client, doubles: Doubles, issuer_key: rsa.RSAPrivateKey
) -> None:
    tenant, app_id = doubles.blueprint()
    doubles.entra.add_federated_credential(app_id, FederatedCredential("k8s", ISSUER, SUBJECT))
    trust(doubles, issuer_key)
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion(issuer_key)}
    assert token_request(http, doubles, tenant, client_id=app_id, **form).status_code == 200
    assert [i for i in doubles.entra.issued if i.app_id == app_id][-1].subject == SUBJECT


def test_a_blueprint_holds_at_most_20_federated_credentials_with_unique_issuer_and_subject(doubles: Doubles) -> None:
    _, app_id = doubles.blueprint()
    for index in range(20):
        doubles.entra.add_federated_credential(app_id, FederatedCredential(f"c{index}", ISSUER, f"s{index}"))
    with pytest.raises(EntraRefusal, match="at most 20"):
        doubles.entra.add_federated_credential(app_id, FederatedCredential("c20", ISSUER, "s20"))
    _, other = doubles.blueprint()
    doubles.entra.add_federated_credential(other, FederatedCredential("a", ISSUER, "s"))
    with pytest.raises(EntraRefusal, match="issuer and subject"):
        doubles.entra.add_federated_credential(other, FederatedCredential("b", ISSUER, "s"))


# -- Graph -------------------------------------------------------------------------------------


class Caller:
    """A blueprint calling Graph with its own token; with `roles`, a plain app an admin granted them."""

    def __init__(
        self,
        http: httpx.Client,
        doubles: Doubles,
        secret: str = "s",
        principal: bool = True,
        roles: tuple[str, ...] = (),
    ) -> None:
        self.http, self.doubles = http, doubles
        if roles:
            tenant, self.app_id = doubles.tenant, doubles.app(*roles, secret=secret)
        else:
            tenant, self.app_id = doubles.blueprint(secret=secret, principal=principal)
        token = token_request(http, doubles, tenant, client_id=self.app_id, client_secret=secret).json()
        self.claims = jwt.decode(token["access_token"], options={"verify_signature": False})
        self.headers = {"Authorization": f"Bearer {token['access_token']}", "OData-Version": "4.0"}
        self.user = doubles.user()

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, self.doubles.graph_url + path, headers=headers, **kwargs)

    def body(self, **overrides: Any) -> dict[str, Any]:
        return {
            "displayName": "agents/sales-agent",
            "agentIdentityBlueprintId": self.app_id,
            "sponsors@odata.bind": [f"https://graph.microsoft.com/v1.0/users/{self.user}"],
        } | overrides

    def create(self, **overrides: Any) -> httpx.Response:
        return self.call("POST", "/servicePrincipals/microsoft.graph.agentIdentity", json=self.body(**overrides))


def graph_error(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["error"]
    assert {"request-id", "date"} <= set(error["innerError"])
    return response.status_code, error["code"], error["message"]


@pytest.fixture
def caller(http: httpx.Client, doubles: Doubles) -> Caller:
    return Caller(http, doubles)


@pytest.fixture
def reader(http: httpx.Client, doubles: Doubles) -> Caller:
    """The directory app, granted AgentIdentity.Read.All."""
    return Caller(http, doubles, roles=(READ_ALL,))


@pytest.fixture
def writer(http: httpx.Client, doubles: Doubles) -> Caller:
    """The directory app, granted AgentIdentity.ReadWrite.All."""
    return Caller(http, doubles, roles=(READ_WRITE_ALL,))


def test_graph_creates_an_agent_identity_the_caller_can_read(caller: Caller) -> None:
    created = caller.create(tags=["mine"])
    assert created.status_code == 201
    body = created.json()
    assert (body["agentIdentityBlueprintId"], body["servicePrincipalType"], body["tags"]) == (
        caller.app_id, "ServiceIdentity", ["mine"],
    )  # fmt: skip
    fetched = caller.call("GET", f"/servicePrincipals/{body['id']}/microsoft.graph.agentIdentity")
    assert fetched.json()["displayName"] == "agents/sales-agent"


def test_graph_refuses_a_token_it_did_not_issue(caller: Caller) -> None:
    response = caller.call(
        "GET", "/servicePrincipals/x/microsoft.graph.agentIdentity", headers={"Authorization": "Bearer x"}
    )
    assert graph_error(response)[:2] == (401, "InvalidAuthenticationToken")


def test_graph_wants_odata_version_4_on_writes(caller: Caller) -> None:
    bare = caller.http.post(
        caller.doubles.graph_url + "/servicePrincipals/microsoft.graph.agentIdentity",
        headers={"Authorization": caller.headers["Authorization"]},
        json=caller.body(),
    )
    assert graph_error(bare)[:2] == (400, "BadRequest")
    assert "OData-Version: 4.0" in graph_error(bare)[2]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"sponsors@odata.bind": []}, "No sponsor specified"),
        ({"favouriteColour": "blue"}, "Property 'favouriteColour' does not exist on type"),
        ({"tags": "not-a-list"}, "to the expected type 'Collection(Edm.String)'"),
        ({"accountEnabled": "yes"}, "to the expected type 'Edm.Boolean'"),
        ({"createdByAppId": "x"}, "Property 'createdByAppId' is read-only"),
        ({"displayName": None}, "The property 'displayName' is required"),
    ],
)
def test_graph_refuses_bodies_the_schema_or_the_rules_do_not_allow(
    caller: Caller, overrides: dict[str, Any], expected: str
) -> None:
    status, code, message = graph_error(caller.create(**overrides))
    assert (status, code) == (400, "Request_BadRequest")
    assert expected in message


def test_graph_allows_at_most_five_group_sponsors(caller: Caller) -> None:
    groups = [f"https://graph.microsoft.com/v1.0/groups/{caller.doubles.group()}" for _ in range(6)]
    assert "at most 5 groups" in graph_error(caller.create(**{"sponsors@odata.bind": groups}))[2]


def test_graph_refuses_an_unknown_sponsor(caller: Caller) -> None:
    refs = [f"https://graph.microsoft.com/v1.0/users/{uuid.uuid4()}"]
    assert graph_error(caller.create(**{"sponsors@odata.bind": refs}))[:2] == (404, "Request_ResourceNotFound")


def test_a_blueprint_creates_only_under_its_own_app_id(caller: Caller) -> None:
    response = caller.create(agentIdentityBlueprintId=str(uuid.uuid4()))
    assert graph_error(response)[:2] == (403, "Error_AgentIdentitySelfCreateRequired")


def test_a_blueprint_without_a_principal_cannot_create(http: httpx.Client, doubles: Doubles) -> None:
    caller = Caller(http, doubles, principal=False)
    assert graph_error(caller.create())[:2] == (400, "AgentIdentity_AgentBlueprintPrincipalDoesNotExist")


def test_the_limit_of_250_counts_soft_deleted_identities(caller: Caller) -> None:
    for index in range(249):
        caller.doubles.graph.seed(caller.app_id, f"old-{index}", deleted=index < 10)
    assert caller.create().status_code == 201
    assert graph_error(caller.create())[:2] == (400, "AgentIdentity_LimitExceeded")


def test_lists_page_by_100_with_a_next_link_that_keeps_the_filter(caller: Caller, reader: Caller) -> None:
    for index in range(230):
        caller.doubles.graph.seed(caller.app_id, f"a-{index}")
    url: str | None = caller.doubles.graph_url + "/servicePrincipals/microsoft.graph.agentIdentity"
    params: dict[str, str] | None = {"$filter": f"agentIdentityBlueprintId eq '{caller.app_id}'"}
    sizes = []
    while url:
        page = reader.http.get(url, params=params, headers=reader.headers).json()
        sizes.append(len(page["value"]))
        assert {item["agentIdentityBlueprintId"] for item in page["value"]} == {caller.app_id}
        url, params = page.get("@odata.nextLink"), None
    assert sizes == [100, 100, 30]


def test_a_list_filters_on_one_tag_and_a_server_refusing_filters_says_400(caller: Caller, reader: Caller) -> None:
    tagged = caller.create(tags=["entra-webhook:e2e:it's-mine"]).json()["id"]
    caller.create(tags=["other"])
    query = {"$filter": "tags/any(t:t eq 'entra-webhook:e2e:it''s-mine')", "$count": "true"}
    page = reader.call("GET", "/servicePrincipals/microsoft.graph.agentIdentity", params=query).json()
    assert ([item["id"] for item in page["value"]], page["@odata.count"]) == ([tagged], 1)
    with caller.doubles.graph.faulty(refuse_filters=True):
        refused = reader.call("GET", "/servicePrincipals/microsoft.graph.agentIdentity", params=query)
    assert graph_error(refused)[:2] == (400, "Request_UnsupportedQuery")


def test_a_delete_is_soft(caller: Caller) -> None:
    object_id = caller.create().json()["id"]
    path = f"/servicePrincipals/{object_id}/microsoft.graph.agentIdentity"
    assert caller.call("DELETE", path).status_code == 204
    assert caller.call("GET", path).status_code == 404
    assert caller.call("DELETE", path).status_code == 404
    assert [found.id for found in caller.doubles.graph.of_blueprint(caller.app_id, deleted=True)] == [object_id]


def test_sponsors_are_added_and_removed_but_never_to_none(caller: Caller, writer: Caller) -> None:
    object_id = caller.create().json()["id"]
    base = f"/servicePrincipals/{object_id}/microsoft.graph.agentIdentity/sponsors"
    assert graph_error(writer.call("DELETE", f"{base}/{caller.user}/$ref"))[2].startswith("No sponsor specified")
    other = caller.doubles.user()
    added = writer.call("POST", f"{base}/$ref", json={"@odata.id": f"https://graph.microsoft.com/v1.0/users/{other}"})
    assert added.status_code == 204
    assert writer.call("DELETE", f"{base}/{caller.user}/$ref").status_code == 204
    assert [item["id"] for item in writer.call("GET", base).json()["value"]] == [other]


def test_throttling_answers_429_with_retry_after(caller: Caller) -> None:
    with caller.doubles.graph.faulty(throttle=1, retry_after=1):
        response = caller.create()
        assert (response.status_code, response.headers["Retry-After"]) == (429, "1")
        assert caller.create().status_code == 201


def test_a_new_identity_reads_as_missing_while_it_replicates(caller: Caller) -> None:
    with caller.doubles.graph.faulty(replication_seconds=0.5):
        object_id = caller.create().json()["id"]
        path = f"/servicePrincipals/{object_id}/microsoft.graph.agentIdentity"
        assert graph_error(caller.call("GET", path))[:2] == (404, "Request_ResourceNotFound")
        time.sleep(0.6)
        assert caller.call("GET", path).status_code == 200


def listed_ids(caller: Caller) -> list[str]:
    """The caller's identities, as a directory app with AgentIdentity.Read.All lists them."""
    reader = Caller(caller.http, caller.doubles, roles=(READ_ALL,))
    query = {"$filter": f"agentIdentityBlueprintId eq '{caller.app_id}'"}
    page = reader.call("GET", "/servicePrincipals/microsoft.graph.agentIdentity", params=query).json()
    return [item["id"] for item in page["value"]]


def test_a_new_identity_is_missing_from_lists_while_they_lag(caller: Caller) -> None:
    with caller.doubles.graph.faulty(list_lag_seconds=0.5):
        object_id = caller.create().json()["id"]
        assert listed_ids(caller) == []
        assert caller.call("GET", f"/servicePrincipals/{object_id}/microsoft.graph.agentIdentity").status_code == 200
        time.sleep(0.6)
        assert listed_ids(caller) == [object_id]


def test_a_withheld_create_is_stored_and_its_connection_dropped_without_an_answer(caller: Caller) -> None:
    outcome: list[BaseException | httpx.Response] = []

    def create() -> None:
        try:
            outcome.append(caller.create())
        except httpx.TransportError as error:
            outcome.append(error)

    graph = caller.doubles.graph
    with graph.faulty(withhold_creates=1):
        waiting = threading.Thread(target=create)
        waiting.start()
        deadline = time.monotonic() + 5
        while not graph.of_blueprint(caller.app_id) and time.monotonic() < deadline:
            time.sleep(0.02)
        (stored,) = graph.of_blueprint(caller.app_id)
        assert graph.withheld[-1] == stored.id
        time.sleep(0.2)
        assert outcome == []  # still waiting for an answer
    waiting.join(5)
    (error,) = outcome
    assert isinstance(error, httpx.RemoteProtocolError)  # "Server disconnected without sending a response."
    assert listed_ids(caller) == [stored.id]
    assert caller.create().status_code == 201  # the fault was for one create only


def test_another_blueprint_s_identity_is_off_limits(http: httpx.Client, doubles: Doubles, caller: Caller) -> None:
    object_id = caller.create().json()["id"]
    stranger = Caller(http, doubles)
    path = f"/servicePrincipals/{object_id}/microsoft.graph.agentIdentity"
    for method, body in (("GET", None), ("PATCH", {"displayName": "mine now"}), ("DELETE", None)):
        response = stranger.call(method, path, json=body)
        assert graph_error(response)[:2] == (403, "Authorization_RequestDenied"), method
    assert caller.call("GET", path).json()["displayName"] == "agents/sales-agent"


# -- the permission table, enforced ------------------------------------------------------------


def test_a_blueprint_s_token_carries_agent_identity_create_as_manager_only(caller: Caller) -> None:
    assert caller.claims["roles"] == [CREATE_AS_MANAGER]


def test_an_application_permission_cannot_be_granted_to_a_blueprint(doubles: Doubles) -> None:
    _, app_id = doubles.blueprint()
    with pytest.raises(EntraRefusal, match="cannot be granted to an agent identity blueprint principal"):
        doubles.entra.grant(app_id, READ_WRITE_ALL)
    assert doubles.entra.apps[app_id].roles == {CREATE_AS_MANAGER}


def test_an_app_s_token_carries_what_an_admin_granted_and_none_without_a_grant(
    http: httpx.Client, doubles: Doubles
) -> None:
    assert Caller(http, doubles, roles=(READ_ALL, READ_WRITE_ALL)).claims["roles"] == [READ_ALL, READ_WRITE_ALL]
    app_id = doubles.app(secret="s")
    token = token_request(http, doubles, doubles.tenant, client_id=app_id, client_secret="s").json()
    assert "roles" not in jwt.decode(token["access_token"], options={"verify_signature": False})


def test_a_refusal_has_graph_s_error_shape(caller: Caller) -> None:
    response = caller.call("GET", "/servicePrincipals/microsoft.graph.agentIdentity")
    body = response.json()
    assert (response.status_code, set(body), set(body["error"])) == (403, {"error"}, {"code", "message", "innerError"})
    assert graph_error(response) == (
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )


def request_for(operation: str, object_id: str, sponsor: str, blueprint: str, user: str) -> tuple[str, str, Any]:
    """A well-formed request for one row of the permission table."""
    row = OPERATIONS[operation]
    path = row.path.replace("{id}", object_id).replace("{sponsorId}", sponsor)
    reference = {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{user}"}
    bodies: dict[str, Any] = {
        "create": {"displayName": "x", "agentIdentityBlueprintId": blueprint,
                   "sponsors@odata.bind": [reference["@odata.id"]]},
        "update": {"displayName": "renamed"},
        "add sponsor": reference,
    }  # fmt: skip
    return row.method, path, bodies.get(operation)


ROLES = (CREATE_AS_MANAGER, CREATE_ALL, READ_ALL, READ_WRITE_ALL, ENABLE_DISABLE_ALL, DELETE_RESTORE_ALL,
         APPLICATION_READ_ALL)  # fmt: skip


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_operation_is_allowed_exactly_to_the_roles_its_reference_page_lists(
    http: httpx.Client, doubles: Doubles, caller: Caller, operation: str
) -> None:
    row = OPERATIONS[operation]
    assert row.url.startswith("https://learn.microsoft.com/en-us/graph/api/agentidentity-")
    for role in ROLES:
        if role == CREATE_AS_MANAGER:
            who, own = caller, caller  # a blueprint, on its own identity
        else:
            who, own = Caller(http, doubles, roles=(role,)), caller
        object_id = own.create().json()["id"]
        sponsor = own.user
        if operation == "remove sponsor":  # never the last one
            doubles.graph.identities[object_id].sponsors.append(doubles.user())
        method, path, body = request_for(operation, object_id, sponsor, own.app_id, doubles.user())
        response = who.call(method, path, json=body)
        refused = response.status_code == 403 and response.json()["error"]["code"] == "Authorization_RequestDenied"
        assert refused == (role not in row.roles), (operation, role, response.status_code, response.text[:200])
