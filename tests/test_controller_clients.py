"""The controller's Graph client and MSAL token source against the doubles, over real HTTPS."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Doubles
from tests.doubles.entra import FederatedCredential
from tests.doubles.permissions import READ_ALL, READ_WRITE_ALL
from webhook.controller.graph import BlueprintGraph, DirectoryGraph, EntraIdentity, Graph, GraphError, Retrying
from webhook.controller.tokens import AppLogin, TokenError, Tokens

ISSUER = "https://issuer.example.test"
SUBJECT = "system:serviceaccount:entra-system:entra-controller"


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def graph(doubles: Doubles, slept: list[float]) -> Iterator[Graph]:
    context = ssl.create_default_context(cafile=str(doubles.ca_file))
    client = Graph(doubles.graph_url, context, 10, Retrying(retry_after_max=5, backoff=0.01, sleep=slept.append))
    yield client
    client.close()


def tokens(doubles: Doubles, token_file: Path) -> Tokens:
    return Tokens(token_file, doubles.entra_url, str(doubles.ca_file), 10)


def as_blueprint(doubles: Doubles, graph: Graph, tmp_path: Path) -> tuple[BlueprintGraph, str]:
    tenant, app_id = doubles.blueprint(secret="s3cret")
    login = AppLogin(tenant, app_id, None, "s3cret")
    return graph.as_blueprint(app_id, tokens(doubles, tmp_path / "none").provider(login)), app_id


def as_directory(doubles: Doubles, graph: Graph, tmp_path: Path, *roles: str) -> DirectoryGraph:
    """The directory app, granted `roles` (default AgentIdentity.ReadWrite.All)."""
    app_id = doubles.app(*(roles or (READ_WRITE_ALL,)), secret="d1rectory")
    login = AppLogin(doubles.tenant, app_id, None, "d1rectory")
    return graph.as_directory(app_id, tokens(doubles, tmp_path / "none").provider(login))


def body(doubles: Doubles, app_id: str) -> dict[str, object]:
    sponsor = f"{doubles.graph_url}/users/{doubles.user()}"
    return {"displayName": "ns/name", "agentIdentityBlueprintId": app_id, "sponsors@odata.bind": [sponsor]}


def test_a_create_is_read_back_typed_with_its_client_id_and_found_by_its_marker_across_pages(
    doubles: Doubles, graph: Graph, tmp_path: Path
) -> None:
    client, app_id = as_blueprint(doubles, graph, tmp_path)
    directory = as_directory(doubles, graph, tmp_path, READ_ALL)
    for index in range(150):
        doubles.graph.seed(app_id, f"old-{index}", tags=["entra-webhook:e2e:old"])
    created = client.create({**body(doubles, app_id), "tags": ["entra-webhook:e2e:new"]})
    assert created == client.get(created.id)
    assert (created.client_id, created.blueprint_id, created.tags) == (created.id, app_id, ("entra-webhook:e2e:new",))
    assert created.display_name == "ns/name"
    assert directory.marked(app_id, ["entra-webhook:e2e:new"]) == [created]
    assert len(directory.marked(app_id, ["entra-webhook:e2e:old", "entra-webhook:e2e:new"])) == 151  # 2 pages
    _, other = doubles.blueprint()
    assert directory.marked(other, ["entra-webhook:e2e:new"]) == []  # another blueprint's marker is not ours


def test_when_graph_refuses_the_tag_filter_the_list_is_filtered_here(
    doubles: Doubles, graph: Graph, tmp_path: Path
) -> None:
    client, app_id = as_blueprint(doubles, graph, tmp_path)
    directory = as_directory(doubles, graph, tmp_path, READ_ALL)
    created = client.create({**body(doubles, app_id), "tags": ["entra-webhook:e2e:refused"]})
    with doubles.graph.faulty(refuse_filters=True):
        assert directory.marked(app_id, ["entra-webhook:e2e:refused"]) == [created]
        assert graph.filters_refused
        before = len(doubles.graph.requests)
        assert directory.marked(app_id, ["entra-webhook:e2e:refused", "entra-webhook:e2e:other"]) == [created]
    lists = doubles.graph.requests[before:]
    assert lists
    assert all(method == "GET" for method, _ in lists)  # unfiltered pages only, no refused filter again


def test_a_blueprint_alone_may_not_list_and_the_error_says_what_as_whom(
    doubles: Doubles, graph: Graph, tmp_path: Path
) -> None:
    tenant, app_id = doubles.blueprint(secret="s3cret")
    login = AppLogin(tenant, app_id, None, "s3cret")
    posing = graph.as_directory(app_id, tokens(doubles, tmp_path / "none").provider(login))
    with pytest.raises(GraphError) as refused:
        posing.marked(app_id, ["entra-webhook:e2e:x"])
    error = refused.value
    assert (error.status, error.code, error.operation, error.caller) == (
        403, "Authorization_RequestDenied", "list", f"directory app {app_id}",
    )  # fmt: skip


def test_an_answer_without_an_id_is_a_graph_error_not_a_crash() -> None:
    with pytest.raises(GraphError) as malformed:
        EntraIdentity.parse({"displayName": "no id"})
    assert malformed.value.code == "MalformedAnswer"
    assert EntraIdentity.parse({"id": "ABC", "tags": "not-a-list"}) == EntraIdentity("abc", "abc", "", "", (), "")


def test_429_is_retried_after_the_time_graph_asks_for(
    doubles: Doubles, graph: Graph, tmp_path: Path, slept: list[float]
) -> None:
    client, app_id = as_blueprint(doubles, graph, tmp_path)
    seeded = doubles.graph.seed(app_id, "listed")
    with doubles.graph.faulty(retry_after=3, throttle=2):
        found = client.get(seeded.id)
    assert found is not None
    assert found.id == seeded.id
    assert len(slept) == 2
    assert all(3 <= seconds <= 3 * 1.25 for seconds in slept)  # never earlier than asked, a little jitter


def test_a_throttled_create_is_not_repeated_but_says_when_to_try_again(
    doubles: Doubles, graph: Graph, tmp_path: Path, slept: list[float]
) -> None:
    client, app_id = as_blueprint(doubles, graph, tmp_path)
    with doubles.graph.faulty(retry_after=3, throttle=1), pytest.raises(GraphError) as refused:
        client.create(body(doubles, app_id))
    error = refused.value
    assert (error.status, error.code, error.outcome_unknown, error.retry_after) == (429, "TooManyRequests", False, 3)
    assert slept == []
    assert doubles.graph.of_blueprint(app_id) == []


def test_a_create_whose_answer_never_comes_is_not_repeated_and_may_have_happened(
    doubles: Doubles, tmp_path: Path, slept: list[float]
) -> None:
    context = ssl.create_default_context(cafile=str(doubles.ca_file))
    impatient = Graph(doubles.graph_url, context, 0.5, Retrying(backoff=0.01, sleep=slept.append))
    client, app_id = as_blueprint(doubles, impatient, tmp_path)
    before = len(doubles.graph.requests)
    try:
        with doubles.graph.faulty(withhold_creates=1), pytest.raises(GraphError) as lost:
            client.create(body(doubles, app_id))
    finally:
        impatient.close()
    assert (lost.value.status, lost.value.code, lost.value.outcome_unknown) == (0, "TransportError", True)
    assert lost.value.message.startswith("ReadTimeout")
    (stored,) = doubles.graph.of_blueprint(app_id)  # Graph made it; only the answer was lost
    assert doubles.graph.withheld[-1] == stored.id
    assert doubles.graph.requests[before:] == [("POST", "/v1.0/servicePrincipals/microsoft.graph.agentIdentity")]
    assert slept == []


def test_a_create_that_cannot_connect_did_not_happen(doubles: Doubles, tmp_path: Path, slept: list[float]) -> None:
    closed = Graph("https://127.0.0.1:9/v1.0", True, 2, Retrying(backoff=0.01, sleep=slept.append))
    client, app_id = as_blueprint(doubles, closed, tmp_path)
    try:
        with pytest.raises(GraphError) as refused:
            client.create(body(doubles, app_id))
    finally:
        closed.close()
    assert (refused.value.code, refused.value.outcome_unknown) == ("TransportError", False)
    assert refused.value.message.startswith("ConnectError")
    assert slept == []


def test_every_graph_request_is_observed_with_method_status_and_time(
    doubles: Doubles, tmp_path: Path, slept: list[float]
) -> None:
    seen: list[tuple[str, str, float]] = []
    context = ssl.create_default_context(cafile=str(doubles.ca_file))
    observed = Graph(doubles.graph_url, context, 10, Retrying(backoff=0.01, sleep=slept.append),
                     lambda method, status, seconds: seen.append((method, status, seconds)))  # fmt: skip
    client, app_id = as_blueprint(doubles, observed, tmp_path)
    directory = as_directory(doubles, observed, tmp_path, READ_ALL)
    try:
        with doubles.graph.faulty(throttle=1):
            listed = directory.marked(app_id, ["entra-webhook:e2e:none"])
        created = client.create(body(doubles, app_id))
        assert client.get("00000000-0000-4000-8000-000000000000") is None
    finally:
        observed.close()
    assert listed == []
    assert created.blueprint_id == app_id
    assert [(method, status) for method, status, _ in seen] == [
        ("GET", "429"), ("GET", "200"), ("POST", "201"), ("GET", "404"),
    ]  # fmt: skip
    assert all(0 < seconds < 10 for _, _, seconds in seen)


def test_a_graph_refusal_carries_its_code(doubles: Doubles, graph: Graph, tmp_path: Path) -> None:
    client, app_id = as_blueprint(doubles, graph, tmp_path)
    with pytest.raises(GraphError) as refused:
        client.create({**body(doubles, app_id), "sponsors@odata.bind": []})
    assert (refused.value.status, refused.value.code) == (400, "Request_BadRequest")
    assert "No sponsor specified" in refused.value.message


def test_a_missing_identity_reads_as_none_and_its_delete_as_false(
    doubles: Doubles, graph: Graph, tmp_path: Path
) -> None:
    client, _ = as_blueprint(doubles, graph, tmp_path)
    assert client.get("00000000-0000-4000-8000-000000000000") is None
    assert client.delete("00000000-0000-4000-8000-000000000000") is False


def test_sponsors_are_listed_added_and_removed_by_the_directory_app(
    doubles: Doubles, graph: Graph, tmp_path: Path
) -> None:
    client, app_id = as_blueprint(doubles, graph, tmp_path)
    directory = as_directory(doubles, graph, tmp_path)
    created = client.create(body(doubles, app_id))
    first = directory.sponsors(created.id)
    other = doubles.user()
    directory.add_sponsor(created.id, f"{doubles.graph_url}/users/{other}")
    directory.remove_sponsor(created.id, first[0])
    assert directory.sponsors(created.id) == [other]
    reader = as_directory(doubles, graph, tmp_path, READ_ALL)
    with pytest.raises(GraphError) as refused:
        reader.sponsors(created.id)  # listing sponsors needs ReadWrite.All
    assert (refused.value.code, refused.value.operation) == ("Authorization_RequestDenied", "list sponsors")


def test_a_wrong_secret_is_a_token_error_with_the_aadsts_code(doubles: Doubles, tmp_path: Path) -> None:
    tenant, app_id = doubles.blueprint(secret="right")
    with pytest.raises(TokenError) as refused:
        tokens(doubles, tmp_path / "none").token(AppLogin(tenant, app_id, None, "wrong"))
    assert refused.value.code == "AADSTS7000215"
    assert "Trace ID" not in refused.value.message
    assert "wrong" not in str(refused.value)  # the credential never appears in an error


def test_workload_identity_reads_the_token_file_for_each_new_token(doubles: Doubles, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    doubles.entra.trust_issuer(ISSUER, {"keys": [public | {"kid": "k", "alg": "RS256"}]})
    tenant, app_id = doubles.blueprint()
    doubles.entra.add_federated_credential(app_id, FederatedCredential("k8s", ISSUER, SUBJECT))
    token_file = tmp_path / "token"
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": SUBJECT, "aud": ["api://AzureADTokenExchange"], "iat": now, "exp": now + 600}
    token_file.write_text(jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k"}))
    source = tokens(doubles, token_file)
    access = source.token(AppLogin(tenant, app_id, None, None))
    assert doubles.entra.verify_access_token(access)["appid"] == app_id
    assert doubles.entra.issued[-1].method == "client_assertion"


def test_an_unreachable_authority_is_a_token_error(doubles: Doubles, tmp_path: Path) -> None:
    source = Tokens(tmp_path / "none", "https://127.0.0.1:9/", str(doubles.ca_file), 2)
    with pytest.raises(TokenError) as refused:
        source.token(AppLogin("7a1c2f0e-4b5d-4c3e-9f00-123456789abc", "x", None, "s"))
    assert refused.value.code == "TokenEndpointUnreachable"


def test_a_rotated_secret_replaces_the_old_one_and_its_tokens_and_each_token_is_observed(
    doubles: Doubles, tmp_path: Path
) -> None:
    tenant, app_id = doubles.blueprint(secret="first")
    seen: list[str] = []
    source = Tokens(tmp_path / "none", doubles.entra_url, str(doubles.ca_file), 10, seen.append)
    first = source.token(AppLogin(tenant, app_id, None, "first"))
    assert source.token(AppLogin(tenant, app_id, None, "first")) == first
    doubles.entra.apps[app_id].secrets = {"second"}  # the admin rotates it; the Secret follows
    second = source.token(AppLogin(tenant, app_id, None, "second"))
    assert doubles.entra.verify_access_token(second)["appid"] == app_id
    assert [i.method for i in doubles.entra.issued if i.app_id == app_id] == ["client_secret", "client_secret"]
    assert source.apps() == 1  # the first secret and its token are gone
    with pytest.raises(TokenError):
        source.token(AppLogin(tenant, app_id, None, "first"))  # revoked: asked for anew, refused
    assert seen == ["issued", "cached", "issued", "refused"]
