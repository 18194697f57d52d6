"""Shared fixtures: the `agents` namespace config, settings, and YAML loading."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.doubles.entra import EntraDouble
from tests.doubles.graph import GraphDouble
from tests.doubles.https import serve_https
from tests.fuzz import COUNTS, PROFILE
from tests.servers import make_certs
from webhook.core.index import ConfigIndex
from webhook.core.settings import Settings
from webhook.injector.sources.files import FileSource

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


@dataclass
class Doubles:
    """The Entra token endpoint and Graph doubles, on loopback HTTPS signed by `ca_file`'s CA."""

    entra: EntraDouble
    graph: GraphDouble
    entra_url: str
    graph_url: str  # with /v1.0
    ca_file: Path
    tenant: str = field(default_factory=lambda: str(uuid.uuid4()))  # one organisation's tenant

    def blueprint(self, secret: str | None = None, principal: bool = True) -> tuple[str, str]:
        """A new blueprint app in the tenant: (tenant id, app id)."""
        app_id = str(uuid.uuid4())
        self.entra.add_blueprint(self.tenant, app_id, secret)
        if principal:
            self.graph.principals.add(app_id)
        return self.tenant, app_id

    def app(self, *roles: str, secret: str | None = None) -> str:
        """A plain app registration in the tenant, granted these application permissions by an admin."""
        app_id = str(uuid.uuid4())
        self.entra.add_app(self.tenant, app_id, secret)
        for role in roles:
            self.entra.grant(app_id, role)
        return app_id

    def user(self) -> str:
        user = str(uuid.uuid4())
        self.graph.users.add(user)
        return user

    def group(self) -> str:
        group = str(uuid.uuid4())
        self.graph.groups.add(group)
        return group


@pytest.fixture(scope="session")
def doubles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Doubles]:
    certs = make_certs(tmp_path_factory.mktemp("doubles-certs"))
    entra = EntraDouble()
    graph = GraphDouble(entra)
    with serve_https(entra.handle, certs) as entra_url, serve_https(graph.handle, certs) as graph_url:
        entra.base_url, graph.base_url = entra_url, graph_url
        yield Doubles(entra, graph, entra_url, graph_url + "/v1.0", certs / "ca.crt")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the property suites ran, so a fuzz campaign reports counts and not only "passed"."""
    if COUNTS:
        terminalreporter.section(f"fuzz counts (hypothesis profile {PROFILE})")
        for what, amount in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{amount:>9,}  {what}")
