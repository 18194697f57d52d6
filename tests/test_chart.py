"""The chart's defaults against the webhook's own (the parts that need no helm and no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from webhook.core.settings import Settings

CHART = Path(__file__).resolve().parents[1] / "charts" / "entra-webhook"


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def test_the_sidecar_defaults_are_the_webhooks_own() -> None:
    sidecar = values()["sidecar"]
    defaults = Settings()
    assert sidecar["image"] == defaults.sidecar_image
    assert sidecar["port"] == defaults.sidecar_port
    assert sidecar["mode"] == defaults.mode
    assert sidecar["runAsUser"] == defaults.run_as_user
    assert sidecar["resources"] == {
        "requests": {"cpu": defaults.sidecar_cpu_request, "memory": defaults.sidecar_memory_request},
        "limits": {"cpu": defaults.sidecar_cpu_limit, "memory": defaults.sidecar_memory_limit},
    }


def schema_nodes(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every object in the values schema, by its path."""
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += schema_nodes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += schema_nodes(value, f"{path}[{index}]")
    return found


def test_every_schema_pattern_has_a_human_description_that_a_bad_value_prints() -> None:
    """A refused pattern prints `value must be '<the description>'` beside it (tests/e2e/test_chart.py shows it):
    the pattern sits in an anyOf whose other branch can never match and exists for that message."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    patterns = 0
    for path, node in schema_nodes(schema):
        if "pattern" in node:
            assert path.endswith("/anyOf[0]"), f"{path}: a pattern without its description"
        branches = node.get("anyOf", [])
        if branches and "pattern" in branches[0]:
            patterns += 1
            description = node.get("description", "")
            assert len(description) > 20, path
            hint = description.rstrip(".")
            assert branches[1] == {"const": hint[0].lower() + hint[1:], "not": {"const": hint[0].lower() + hint[1:]}}
    assert patterns >= 30
