"""The admission shell: nothing raises past it, and its log line is written whatever the Pod holds."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest

from webhook.common.models import ConfigObject, ObjectRef
from webhook.core.index import ConfigIndex
from webhook.core.review import Request
from webhook.core.settings import Settings
from webhook.injector.admission import Admission, Admitted
from webhook.injector.admission_log import AdmissionLog


class BrokenSource:
    """A source whose snapshot fails to read: stands for any bug of ours on the request path."""

    ready = True

    @property
    def index(self) -> ConfigIndex:
        raise RuntimeError("a bug of ours")

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def lookup(self, ref: ObjectRef) -> ConfigObject | None:
        del ref
        return None


class StaticSource(BrokenSource):
    def __init__(self, index: ConfigIndex) -> None:
        self._index = index

    @property
    def index(self) -> ConfigIndex:
        return self._index


def request(pod: dict[str, Any], uid: str = "u-1") -> Request:
    return Request("admission.k8s.io/v1", uid, "CREATE", "Pod", "", "agents", pod, False)


POD = {
    "metadata": {"name": "web", "annotations": {"entra.io/agent-identity": "sales-agent"}},
    "spec": {"containers": [{"name": "app"}]},
}


def test_a_bug_on_the_request_path_admits_the_pod_unchanged_with_a_warning_a_log_and_an_error_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Admitted] = []
    admission = Admission(BrokenSource(), Settings(), observers=[seen.append])
    with caplog.at_level(logging.ERROR):
        reply = asyncio.run(admission.review(request(POD)))
    assert reply["response"] == {
        "uid": "u-1",
        "allowed": True,
        "warnings": ["entra webhook internal error: pod admitted without the Entra sidecar (see webhook logs)"],
    }
    assert [(item.outcome_name, item.reason) for item in seen] == [("error", "internal-error")]
    assert "admission failed for uid u-1; pod admitted unchanged" in caplog.text


def test_a_failing_observer_does_not_change_the_answer(config: ConfigIndex) -> None:
    def broken(_: Admitted) -> None:
        raise ValueError("observer bug")

    reply = asyncio.run(Admission(StaticSource(config), Settings(), observers=[broken]).review(request(POD)))
    assert reply["response"]["allowed"] is True
    assert reply["response"]["patchType"] == "JSONPatch"


@pytest.fixture(autouse=True)
def admission_lines_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="webhook.admissions")


def logged(pod: dict[str, Any], config: ConfigIndex, uid: str = "u-1") -> dict[str, Any]:
    stream = io.StringIO()
    asyncio.run(Admission(StaticSource(config), Settings(), observers=[AdmissionLog(stream)]).review(request(pod, uid)))
    (line,) = stream.getvalue().splitlines()
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_the_log_line_is_written_for_a_pod_whose_name_is_nested_deep(config: ConfigIndex) -> None:
    # Once lost: orjson refused the nested name ("Recursion limit reached") and the line with it.
    pod = {"metadata": {"name": deep(300), "ownerReferences": [{"kind": deep(300), "name": "x", "controller": True}]}}
    line = logged(pod | {"spec": {"containers": [{"name": "app"}]}}, config)
    assert (line["pod"], line["owner"], line["outcome"], line["reason"]) == ("*", None, "denied", "malformed-pod")
    assert (
        line["detail"] == 'pod in namespace "agents": metadata.name must be a string, got an array, which '
        "Kubernetes refuses too: correct it"
    )


def test_the_log_line_stays_short_whatever_the_pod_s_names(config: ConfigIndex) -> None:
    pod = {"metadata": {"name": "n" * 100_000, "annotations": {"entra.io/agent-identity": "x" * 100_000}}}
    line = logged(pod | {"spec": {"containers": [{"name": "app"}]}}, config, uid="u" * 100_000)
    assert line["pod"] == "n" * 253 + "…"
    assert line["uid"] == "u" * 128 + "…"
    assert len(json.dumps(line)) < 2000


def test_the_log_line_survives_strings_orjson_cannot_encode(config: ConfigIndex) -> None:
    pod = {"metadata": {"name": "web\udc80"}, "spec": {"containers": [{"name": "app"}]}}  # a lone surrogate
    line = logged(pod, config)
    assert line["pod"] == "'web\\udc80'"
    assert line["reason"] == "'no-identity'"
