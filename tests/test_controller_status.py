"""The status writer: an Event is news the status says, announced once whatever the API server answers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from webhook.controller.reconcile import Wanted
from webhook.controller.status import StatusWriter

RAW: dict[str, Any] = {"metadata": {"namespace": "agents", "name": "support", "generation": 1, "resourceVersion": "7"}}
DENIED = Wanted("Ready", False, "SecretAccessDenied", 'the controller may not read Secret "support-blueprint"')


class FlakyKube:
    """Answers each status write with the next of `answers`: an HTTP status to fail with, or None to write."""

    def __init__(self, *answers: int | None) -> None:
        self.answers = list(answers)
        self.events: list[str] = []

    def patch_status(
        self, kind: str, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
    ) -> dict[str, Any]:
        del kind, namespace, name
        assert resource_version == "7"
        failure = self.answers.pop(0)
        if failure is not None:
            raise ApiException(status=failure, reason="failed")
        return {"metadata": {**RAW["metadata"], "resourceVersion": "8"}, "status": status}

    def event(self, raw: dict[str, Any], kind: str, reason: str, message: str, warning: bool) -> None:
        del raw, kind, message, warning
        self.events.append(reason)


def writer(kube: FlakyKube) -> StatusWriter:
    return StatusWriter(kube, lambda: dt.datetime(2026, 12, 3, tzinfo=dt.UTC))


@pytest.mark.parametrize("failure", [409, 500, 504])
def test_a_status_that_could_not_be_written_is_announced_once_by_the_pass_that_writes_it(failure: int) -> None:
    kube = FlakyKube(failure, None, None)
    status = writer(kube)
    assert status.report(RAW, "AgentIdentity", [DENIED]) == RAW  # not written: nothing announced
    assert kube.events == []
    written = status.report(RAW, "AgentIdentity", [DENIED])  # the next pass, on the same (unchanged) status
    assert written["metadata"]["resourceVersion"] == "8"
    assert kube.events == ["SecretAccessDenied"]
    status.report({"metadata": RAW["metadata"], "status": written["status"]}, "AgentIdentity", [DENIED])
    assert kube.events == ["SecretAccessDenied"]  # the pass after: no longer news
