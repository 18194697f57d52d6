"""The chart's defaults against the webhook's own (the parts that need no helm and no cluster)."""

from __future__ import annotations

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
