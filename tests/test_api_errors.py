"""API errors become one short line: the status and the server's words, or why nothing answered, never the
client's raw exception text with its connection pool, URL and nested reprs."""

from __future__ import annotations

import json
import ssl

import urllib3
from kubernetes.client.exceptions import ApiException

from webhook.common.kubeapi import describe_api_error

POOL = urllib3.HTTPSConnectionPool("127.0.0.1", 6443)
UNTRUSTED = urllib3.exceptions.SSLError(
    ssl.SSLCertVerificationError(
        1,
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer certificate "
        "(_ssl.c:1006)",
    )
)
SAID = "no answer from the API server (SSLError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "


def test_a_refused_certificate_after_retries_says_which_check_failed_without_the_pool_or_url() -> None:
    error = urllib3.exceptions.MaxRetryError(POOL, "/apis/entra.io/v1alpha1/agentidentities?watch=1", UNTRUSTED)
    assert describe_api_error(error) == SAID + "unable to get local issuer certificate)"


def test_the_clients_status_0_wrapping_of_a_transport_failure_reads_the_same() -> None:
    retried = urllib3.exceptions.MaxRetryError(POOL, "/api", UNTRUSTED)
    assert describe_api_error(ApiException(status=0, reason=f"SSLError\n{retried}")) == (
        SAID + "unable to get local issuer certificate)"
    )


def test_a_refused_connection_is_the_errno_not_the_connection_objects_repr() -> None:
    connection = urllib3.connection.HTTPSConnection("127.0.0.1", 6443)
    refused = urllib3.exceptions.NewConnectionError(
        connection, "Failed to establish a new connection: [Errno 111] Refused"
    )
    error = urllib3.exceptions.MaxRetryError(POOL, "/api", refused)
    assert describe_api_error(error) == "no answer from the API server (NewConnectionError: [Errno 111] Refused)"


def test_a_refusal_is_its_status_and_the_servers_message_bounded() -> None:
    body = json.dumps({"message": "agentidentities.entra.io is forbidden: " + "x" * 1000})
    said = describe_api_error(_with_body(403, "Forbidden", body))
    assert said.startswith("403 Forbidden: agentidentities.entra.io is forbidden: xxx")
    assert len(said) < 330


def _with_body(status: int, reason: str, body: str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = body
    return error
