"""The admission endpoint as the API server sees it: a real uvicorn process over TLS on loopback."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import pytest

from tests.conftest import FIXTURES
from tests.servers import Served, make_certs, serve
from webhook.core.review import MAX_BODY_BYTES
from webhook.injector.certs import make_ca, make_serving, write_bundle

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"generateName": "web-", "annotations": {"entra.io/agent-identity": "sales-agent"}},
    "spec": {"containers": [{"name": "app", "image": "agent:1"}]},
}


def review(uid: str = "uid-1", pod: dict[str, Any] | None = None, **request: Any) -> dict[str, Any]:
    body = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "namespace": "agents",
        "object": pod or POD,
        "dryRun": False,
        **request,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("server")
    certs = make_certs(workdir / "certs")
    with serve(certs, workdir, "--config", str(FIXTURES / "config.yaml")) as served:
        yield served


@pytest.fixture
def client(server: Served) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_a_pod_create_gets_an_injecting_patch(client: httpx.Client) -> None:
    response = client.post("/mutate", json=review())
    assert response.status_code == 200
    reply = response.json()
    assert reply["apiVersion"] == "admission.k8s.io/v1"
    assert reply["kind"] == "AdmissionReview"
    assert reply["response"]["uid"] == "uid-1"
    assert reply["response"]["allowed"] is True
    assert reply["response"]["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(POD, json.loads(base64.b64decode(reply["response"]["patch"])))
    assert [c["name"] for c in patched["spec"]["containers"]] == ["entra-sidecar", "app"]


def test_a_denial_answers_allowed_false_with_the_message(client: httpx.Client) -> None:
    pod = {**POD, "metadata": {"name": "web-7d9c", "annotations": {"entra.io/agent-identity": "sales-agnt"}}}
    reply = client.post("/mutate", json=review(pod=pod)).json()["response"]
    assert reply["allowed"] is False
    assert reply["status"]["code"] == 403
    assert reply["status"]["message"].startswith(
        'pod "web-7d9c" in namespace "agents": entra.io/agent-identity names "sales-agnt", but namespace "agents" '
        "has no AgentIdentity of that name"
    )
    assert "patch" not in reply


def test_a_pod_naming_nothing_is_allowed_with_a_warning(client: httpx.Client) -> None:
    pod = {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "app"}]}}
    reply = client.post("/mutate", json=review(pod=pod)).json()["response"]
    assert reply["allowed"] is True
    assert "patch" not in reply
    assert reply["warnings"][0].startswith('pod "plain" in namespace "agents": names no agent identity')


@pytest.mark.parametrize(
    "changes",
    [
        {"operation": "UPDATE"},
        {"operation": "DELETE", "object": None},
        {"kind": {"group": "", "version": "v1", "kind": "ConfigMap"}, "object": {"data": {}}},
        {"subResource": "ephemeralcontainers"},
    ],
)
def test_anything_but_a_pod_create_is_allowed_untouched(client: httpx.Client, changes: dict[str, Any]) -> None:
    reply = client.post("/mutate", json=review(**changes)).json()
    assert reply["response"] == {"uid": "uid-1", "allowed": True}


def test_dry_run_gets_the_same_answer(client: httpx.Client) -> None:
    real = client.post("/mutate", json=review()).json()["response"]
    dry = client.post("/mutate", json=review(dryRun=True)).json()["response"]
    assert dry == real


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (json.dumps({**review(), "apiVersion": "admission.k8s.io/v9"}).encode(), "apiVersion must be one of"),
        (json.dumps({**review(), "kind": "Pod"}).encode(), "kind must be AdmissionReview"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "no request"),
        (json.dumps(review(uid="")).encode(), "request has no uid"),
    ],
)
def test_malformed_reviews_get_400_with_a_json_error(client: httpx.Client, body: bytes, error: str) -> None:
    response = client.post("/mutate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error in response.json()["error"]


def test_an_oversized_body_gets_413(client: httpx.Client) -> None:
    response = client.post("/mutate", content=b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.json() == {"error": f"request body is larger than {MAX_BODY_BYTES} bytes"}


def test_an_oversized_chunked_body_gets_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b" " * (1024 * 1024)

    response = client.post("/mutate", content=chunks())
    assert response.status_code == 413


def test_a_body_just_under_the_limit_is_read(client: httpx.Client) -> None:
    body = json.dumps(review()).encode()
    padded = body + b" " * (MAX_BODY_BYTES - len(body))
    assert client.post("/mutate", content=padded).json()["response"]["allowed"] is True


def test_a_bad_request_does_not_affect_the_next_one_on_the_same_connection(client: httpx.Client) -> None:
    assert client.post("/mutate", content=b"garbage").status_code == 400
    assert client.post("/mutate", content=b" " * (MAX_BODY_BYTES + 10)).status_code == 413
    assert client.post("/mutate", json=review(uid="after")).json()["response"]["uid"] == "after"


def test_many_concurrent_reviews_each_get_their_own_uid(server: Served) -> None:
    def post(index: int) -> str:
        with server.client() as client:
            return str(client.post("/mutate", json=review(uid=f"u{index}")).json()["response"]["uid"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(post, range(64))) == [f"u{index}" for index in range(64)]


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/mutate").status_code == 405


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_below_1_2_is_refused_by_the_server(server: Served) -> None:
    context = ssl.create_default_context(cafile=str(server.certs / "ca.crt"))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(httpx.ConnectError) as error, httpx.Client(base_url=server.url, verify=context) as client:
        client.get("/healthz")
    # The client did offer TLS 1.1 (a client-side refusal reads NO_PROTOCOLS_AVAILABLE); the server hung up.
    assert "UNEXPECTED_EOF" in str(error.value) or "PROTOCOL_VERSION" in str(error.value)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(base_url=server.url, verify=context) as client:
        assert client.get("/healthz").status_code == 200


def test_a_new_certificate_on_disk_is_served_without_restart_or_failed_requests(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    new_ca = make_ca()  # a new CA too: clients trust both during the overlap, as the API server does
    trust = tmp_path / "trust.crt"
    trust.write_bytes((certs / "ca.crt").read_bytes() + new_ca.cert_pem)
    with serve(certs, tmp_path, "--config", str(FIXTURES / "config.yaml"), "--tls-reload-seconds", "0.1") as served:
        before = served.serving_serial(trust)
        failures: list[str] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    with served.client(cafile=trust) as client:
                        if client.post("/mutate", json=review()).status_code != 200:
                            failures.append("status")
                except httpx.HTTPError as error:
                    failures.append(repr(error))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for worker in workers:
            worker.start()
        write_bundle(certs, new_ca, make_serving(new_ca, ["localhost"], ["127.0.0.1"]))
        deadline = time.monotonic() + 10
        while served.serving_serial(trust) == before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for worker in workers:
            worker.join()
        assert served.serving_serial(trust) != before
        assert failures == []
        assert "serving certificate reloaded" in served.logs()


def test_sigterm_turns_readiness_off_finishes_requests_and_exits(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    shutil.copy(FIXTURES / "config.yaml", tmp_path / "config.yaml")
    with serve(certs, tmp_path, "--config", str(tmp_path / "config.yaml"), "--drain-seconds", "1") as served:
        with served.client() as client:
            served.process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            assert client.get("/readyz").status_code == 503
            assert client.get("/readyz").json() == {"status": "not ready", "reason": "draining"}
            assert client.post("/mutate", json=review()).json()["response"]["allowed"] is True
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is the signal's.
        assert served.process.wait(timeout=30) == -signal.SIGTERM
        logs = served.logs()
        assert logs.index("draining for 1.0s") < logs.index("stopped after in-flight requests finished")


def test_metrics_count_admissions_by_outcome_and_reason(server: Served, client: httpx.Client) -> None:
    client.post("/mutate", json=review(uid="metrics-injected"))
    pod = {**POD, "metadata": {"name": "m", "annotations": {"entra.io/agent-identity": "nope"}}}
    client.post("/mutate", json=review(uid="metrics-denied", pod=pod))
    text = server.metrics()
    assert 'entra_webhook_admissions_total{outcome="injected",reason="injected"}' in text
    assert 'entra_webhook_admissions_total{outcome="denied",reason="unknown-identity"}' in text
    assert 'entra_webhook_config_objects{kind="AgentBlueprint"} 4.0' in text
    assert 'entra_webhook_config_objects{kind="AgentIdentity"} 9.0' in text
    assert "entra_webhook_admission_duration_seconds_bucket" in text
    expiry = next(line for line in text.splitlines() if line.startswith("entra_webhook_certificate_expiry_seconds "))
    assert 360 * 86400 < float(expiry.split()[1]) <= 365 * 86400


def test_each_admission_is_one_json_log_line(server: Served, client: httpx.Client) -> None:
    pod = {
        **POD,
        "metadata": {
            "generateName": "web-7d9c-",
            "annotations": {"entra.io/agent-identity": "sales-agent"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d9c", "controller": True, "uid": "1"}],
        },
    }
    client.post("/mutate", json=review(uid="logged-1", pod=pod))
    deadline = time.monotonic() + 5
    line: dict[str, Any] = {}
    while not line and time.monotonic() < deadline:
        for text in server.logs().splitlines():
            entry = json.loads(text)
            if entry.get("msg") == "admission" and entry.get("uid") == "logged-1":
                line = entry
        time.sleep(0.05)
    assert line["level"] == "info"
    assert {key: line[key] for key in ("namespace", "pod", "owner", "outcome", "reason", "blueprint", "identity")} == {
        "namespace": "agents",
        "pod": "web-7d9c-*",
        "owner": "ReplicaSet/web-7d9c",
        "outcome": "injected",
        "reason": "injected",
        "blueprint": "sales",
        "identity": "sales-agent",
    }
    assert isinstance(line["micros"], int)


@pytest.mark.parametrize("field", ["namespace", "operation", "subResource", "kind"])
def test_a_field_nested_a_thousand_deep_gets_400_and_the_connection_stays_open(
    client: httpx.Client, field: str
) -> None:
    # Once a RecursionError: HTTP 500, and the keep-alive connection silently closed.
    fields: dict[str, Any] = {field: "DEEP"}
    body = json.dumps(review(**fields)).encode().replace(b'"DEEP"', b"[" * 1000 + b"]" * 1000)
    response = client.post("/mutate", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "body nests JSON arrays and objects more than 64 deep"}
    assert response.headers.get("connection") != "close"
    assert client.post("/mutate", json=review(uid="next")).json()["response"]["uid"] == "next"


def test_three_mebibytes_of_nested_arrays_get_400(client: httpx.Client) -> None:
    unit = b"[" * 1000 + b"]" * 1000
    units = (MAX_BODY_BYTES - 200) // (len(unit) + 1)
    deep = b"[" + b",".join([unit] * units) + b"]"
    body = b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"deep":' + deep + b"}}"
    assert len(body) <= MAX_BODY_BYTES
    response = client.post("/mutate", content=body)
    assert response.status_code == 400
    containers = 1000 * units + 3  # the units, their list, the request and the review
    assert response.json() == {"error": f"body holds {containers:,} JSON arrays and objects; the limit is 100,000"}


@pytest.mark.parametrize(("pod", "got"), [([POD], "an array"), ("pod", "a string"), (None, "null")])
def test_a_pod_create_whose_object_is_not_a_json_object_gets_400(client: httpx.Client, pod: Any, got: str) -> None:
    body = review()
    body["request"]["object"] = pod
    response = client.post("/mutate", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": f"request.object must be a JSON object (the Pod) for a Pod CREATE, got {got}"}


def test_a_wrong_typed_pod_is_denied_naming_the_field_not_admitted_with_an_internal_error(client: httpx.Client) -> None:
    pod = {**POD, "spec": {"containers": [{"name": "app", "env": [{"name": ["A"]}]}]}}
    reply = client.post("/mutate", json=review(pod=pod)).json()["response"]
    assert reply["allowed"] is False
    assert reply["status"] == {
        "code": 400,
        "reason": "BadRequest",
        "message": 'pod "web-*" in namespace "agents": spec.containers[0].env[0].name must be a string, got an array, '
        "which Kubernetes refuses too: correct it",
    }


def test_a_connection_idle_longer_than_uvicorn_s_default_keep_alive_is_still_served(server: Served) -> None:
    """The API server keeps idle webhook connections 90 s; ours outlast it (uvicorn's default would
    close them after 5 s, and a sparse Pod creation would pay a new TCP and TLS handshake)."""
    context = ssl.create_default_context(cafile=str(server.certs / "ca.crt"))
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    body = json.dumps(review()).encode()
    headers = {"Content-Type": "application/json"}
    connection.request("POST", "/mutate", body, headers)
    assert connection.getresponse().read()
    socket_before = connection.sock
    time.sleep(6)  # idle past uvicorn's default 5 s keep-alive: the condition under test is the time itself
    connection.request("POST", "/mutate", body, headers)
    assert connection.getresponse().status == 200
    assert connection.sock is socket_before  # the same TLS connection, not a reconnect
    connection.close()
