"""One version number: the package's, and every place that repeats it.

webhook/__init__.py holds it; the package metadata reads it from there; the webhook writes it into every
Pod's entra.io/status. The chart, the image's label, the rendered manifests, the changelog and the docs
repeat it, and a release changes them together.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import jsonpatch
import yaml

import webhook
from webhook.core.decision import Inject, decide
from webhook.core.index import ConfigIndex
from webhook.core.pod import AGENT_IDENTITY, STATUS
from webhook.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
VERSION = webhook.__version__


def test_the_version_is_a_semantic_version() -> None:
    assert re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?", VERSION)


def test_the_package_takes_its_version_from_the_module() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "webhook.__version__"}


def test_the_chart_version_and_app_version_are_the_version() -> None:
    chart = yaml.safe_load((ROOT / "charts" / "entra-webhook" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)


def test_the_image_label_is_the_version_the_build_passes() -> None:
    """The label is the VERSION build argument, which `make image` reads from the package (the built image's
    label is checked by tests/e2e/test_image.py)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r'org\.opencontainers\.image\.version="([^"]*)"', dockerfile) == ["${VERSION}"]
    build = (ROOT / "scripts" / "image-build.sh").read_text()
    assert "version=$(sed -n 's/^__version__ = \"\\(.*\\)\"$/\\1/p' webhook/__init__.py)" in build
    assert '--build-arg "VERSION=$version"' in build


def test_the_status_annotation_carries_the_version(config: ConfigIndex) -> None:
    pod = {
        "metadata": {"name": "web", "annotations": {AGENT_IDENTITY: "sales-agent"}},
        "spec": {"containers": [{"name": "app", "image": "agent:1"}]},
    }
    result = decide(pod, "agents", config, Settings())
    assert isinstance(result, Inject)
    injected = jsonpatch.apply_patch(pod, result.ops)
    assert json.loads(injected["metadata"]["annotations"][STATUS])["version"] == VERSION


def test_the_rendered_manifests_are_labelled_with_the_version() -> None:
    labels = [
        match
        for path in (ROOT / "manifests").rglob("*.yaml")
        for match in re.findall(r'app\.kubernetes\.io/version: "?([^"\s]+)"?', path.read_text())
    ]
    assert len(labels) > 10
    assert set(labels) == {VERSION}


def test_the_newest_changelog_entry_is_the_version() -> None:
    entries = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert entries[0] == VERSION


def test_the_versions_the_docs_show_are_the_version() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    shown = {
        (path.name, found)
        for path in pages
        for found in re.findall(r'"version":\s*"([^"]+)"|entra-agent-webhook:(\d+\.\d+\.\d+)', path.read_text())
    }
    assert shown, "the README's status example shows the version"
    assert {version for _, pair in shown for version in pair if version} == {VERSION}
