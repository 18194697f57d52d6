"""Exact patch ops and the Pod after applying them, one golden pair per shape of Pod.

Regenerate on purpose only: `UPDATE_GOLDEN=1 pytest tests/test_golden.py`, then read the diff.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
import yaml

from tests.conftest import TESTS, load_yaml
from tests.podchecks import assert_only_added
from webhook.core.decision import Inject, Skip, decide
from webhook.core.index import ConfigIndex
from webhook.core.rendered import Rendered
from webhook.core.settings import Settings

CASES = sorted(path.stem for path in (TESTS / "cases").glob("*.yaml"))
GOLDEN = TESTS / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _input_pod(case: dict[str, Any]) -> dict[str, Any]:
    if "from_golden" not in case:
        return copy.deepcopy(case["pod"])
    pod: dict[str, Any] = load_yaml(GOLDEN / f"{case['from_golden']}.pod.yaml")
    if "prepend_init_container" in case:
        pod["spec"]["initContainers"].insert(0, case["prepend_init_container"])
    if "add_container" in case:
        pod["spec"]["containers"].append(case["add_container"])
    return pod


def _run(
    name: str, config: ConfigIndex, rendered: Rendered | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    case = load_yaml(TESTS / "cases" / f"{name}.yaml")
    pod = _input_pod(case)
    settings = Settings(**case.get("settings", {}))
    version = tuple(case["server_version"]) if "server_version" in case else None
    outcome = decide(copy.deepcopy(pod), case["namespace"], config, settings, version, rendered=rendered)
    assert isinstance(outcome, Inject | Skip), outcome
    ops = outcome.ops if isinstance(outcome, Inject) else []
    assert not isinstance(outcome, Inject) or outcome.op_count == len(ops)
    result = {"outcome": type(outcome).__name__, "reason": outcome.reason, "ops": ops, "warnings": outcome.warnings}
    return pod, result, jsonpatch.apply_patch(pod, ops)


def _check_golden(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 and review it"
    assert actual == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_patch_ops_match_the_golden_file(name: str, config: ConfigIndex) -> None:
    _, result, _ = _run(name, config)
    _check_golden(GOLDEN / f"{name}.patch.json", json.dumps(result, indent=2) + "\n")


@pytest.mark.parametrize("name", CASES)
def test_patched_pod_matches_the_golden_file(name: str, config: ConfigIndex) -> None:
    _, _, patched = _run(name, config)
    _check_golden(GOLDEN / f"{name}.pod.yaml", yaml.safe_dump(patched, sort_keys=False))


@pytest.mark.parametrize("name", CASES)
def test_patch_only_adds_and_keeps_everything_the_pod_had(name: str, config: ConfigIndex) -> None:
    pod, result, patched = _run(name, config)
    assert {op["op"] for op in result["ops"]} <= {"add"}
    assert_only_added(pod, patched)


@pytest.mark.parametrize("name", CASES)
def test_injecting_the_patched_pod_again_adds_nothing(name: str, config: ConfigIndex) -> None:
    case = load_yaml(TESTS / "cases" / f"{name}.yaml")
    _, _, patched = _run(name, config)
    settings = Settings(**case.get("settings", {}))
    again = decide(patched, case["namespace"], config, settings)
    assert isinstance(again, Skip)
    assert again.reason == "already-injected"


def test_one_render_cache_across_every_case_twice_gives_the_golden_ops(config: ConfigIndex) -> None:
    """As the server runs: one cache, parts rendered by one case served to the next (settings that
    differ between cases must re-render, not reuse)."""
    rendered = Rendered()
    for _ in range(2):
        for name in CASES:
            _, result, _ = _run(name, config, rendered)
            golden = (GOLDEN / f"{name}.patch.json").read_text(encoding="utf-8")
            assert json.dumps(result, indent=2) + "\n" == golden, name
