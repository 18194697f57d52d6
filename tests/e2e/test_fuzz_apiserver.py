"""Property: an injected Pod is accepted by the real API server whenever the original is (hypothesis).

Generated valid Pods go through `decide` (with the server's version, and with none, as a file config
has it), and both the original and the patched Pod through a server-side dry run in a namespace no
webhook watches. A denial for the annotation budget, with the version known, must be one the API
server agrees with: the Pod injected anyway is refused. (With no version known the budget also
counts what 1.19-1.24 servers add, so it may deny up to 75 bytes early.)
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.e2e.conftest import apply, wait_for_service_account
from tests.e2e.controlplane import ControlPlane
from tests.fuzz import budget, count
from tests.strategies import valid_pods
from tests.test_fuzz_core import CONFIG
from webhook.core.decision import Deny, Inject, decide
from webhook.core.settings import Settings

NAMESPACE = "fuzz-dry-run"


@pytest.fixture(scope="module")
def dry_run_namespace(control_plane: ControlPlane) -> str:
    """Labelled `entra.io/inject=disabled`, so no webhook of the session is called for it."""
    accounts = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE}}
        for name in ("sales-agent", "shared")
    ]
    labels = {"entra.io/inject": "disabled"}
    apply(control_plane, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": labels}})
    apply(control_plane, *accounts)
    for name in ("default", "sales-agent", "shared"):
        wait_for_service_account(control_plane, NAMESPACE, name)
    return NAMESPACE


def dry_run(plane: ControlPlane, pod: dict[str, Any]) -> tuple[int, Any]:
    return plane.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods?dryRun=All", pod)


def _injected_anyway(pod: dict[str, Any], version: tuple[int, int] | None) -> dict[str, Any]:
    """The Pod as the injector would have made it had the big annotation left room (same ops)."""
    roomy = copy.deepcopy(pod)
    roomy["metadata"]["annotations"].pop("example.com/big")
    outcome = decide(roomy, "agents", CONFIG, Settings(), version)
    assert isinstance(outcome, Inject), outcome
    injected: dict[str, Any] = jsonpatch.apply_patch(pod, outcome.ops)
    return injected


@budget(quick=12, long=400)
@given(valid_pods(), st.booleans())
def test_an_injected_pod_is_accepted_whenever_the_original_is(
    control_plane: ControlPlane, dry_run_namespace: str, pod: dict[str, Any], version_known: bool
) -> None:
    del dry_run_namespace
    version = control_plane.version if version_known else None
    status, body = dry_run(control_plane, pod)
    count(f"API server {control_plane.version[0]}.{control_plane.version[1]}: originals sent")
    if status != 201:
        count(f"API server {control_plane.version[0]}.{control_plane.version[1]}: originals refused (no claim)")
        return
    outcome = decide(copy.deepcopy(pod), "agents", CONFIG, Settings(), version)
    if isinstance(outcome, Inject):
        status, body = dry_run(control_plane, jsonpatch.apply_patch(pod, outcome.ops))
        assert status == 201, body.get("message") if isinstance(body, dict) else body
        count(f"API server {control_plane.version[0]}.{control_plane.version[1]}: injected pods accepted")
    elif isinstance(outcome, Deny) and outcome.reason == "annotations-too-large" and version is not None:
        status, body = dry_run(control_plane, _injected_anyway(pod, version))
        assert status == 422, body
        assert "metadata.annotations: Too long" in body["message"]
        count(f"API server {control_plane.version[0]}.{control_plane.version[1]}: budget denials confirmed")
    else:
        count(f"API server {control_plane.version[0]}.{control_plane.version[1]}: {outcome.reason}")
