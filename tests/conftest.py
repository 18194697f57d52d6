"""Shared fixtures: the `agents` namespace config, settings, and YAML loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fuzz import COUNTS, PROFILE
from webhook.index import ConfigIndex
from webhook.settings import Settings
from webhook.sources.files import FileSource

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"


def resource(kind: str, name: str, spec: Any, namespace: str = "agents") -> dict[str, Any]:
    """An AgentBlueprint or AgentIdentity as the API server would hand it over."""
    metadata = {"name": name, "namespace": namespace}
    return {"apiVersion": "entra.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def config() -> ConfigIndex:
    return FileSource([FIXTURES / "config.yaml"]).load()


@pytest.fixture
def settings() -> Settings:
    return Settings()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the property suites ran, so a fuzz campaign reports counts and not only "passed"."""
    if COUNTS:
        terminalreporter.section(f"fuzz counts (hypothesis profile {PROFILE})")
        for what, amount in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{amount:>9,}  {what}")
