"""The docs site: its generated pages are current, and name everything their sources define.

The coverage tests read each source on their own (not through the generator), so a generator that drops a
field, a flag or a reason fails here even when its page is "current".
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from scripts import render_docs
from tests.test_monitoring import CONTROLLER, WEBHOOK, alert_expressions, exported_families
from webhook.cli import build_parser
from webhook.common.settings import env_name, flag_name
from webhook.controller import advice, reconcile, steps
from webhook.controller.settings import ENV_PREFIX as CONTROLLER_PREFIX
from webhook.controller.settings import ControllerSettings
from webhook.core import pod, sidecar
from webhook.core.reasons import REASONS, Reason
from webhook.core.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHART = ROOT / "charts" / "entra-webhook"


def page(name: str) -> str:
    return (DOCS / "reference" / name).read_text()


@pytest.mark.parametrize("name", sorted(render_docs.PAGES))
def test_each_generated_page_is_what_its_source_gives_now(name: str) -> None:
    committed = (DOCS / name).read_text() if (DOCS / name).exists() else ""
    assert committed == render_docs.PAGES[name](), f"docs/{name} is stale: run `make docs` and commit it"


def test_the_check_names_a_stale_page_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_docs, "DOCS", tmp_path)
    (tmp_path / "changelog.md").write_text("# Changelog\n\nan old copy\n")
    assert render_docs.stale().keys() == render_docs.PAGES.keys()  # the rest are missing altogether
    assert "-an old copy" in render_docs.stale()["changelog.md"]
    assert render_docs.main([]) == 0
    assert render_docs.stale() == {}
    assert render_docs.main(["--check"]) == 0


def code_spans(text: str) -> set[str]:
    """The inline code of a page (fenced blocks left out), as Markdown or as the HTML the tables use."""
    text = re.sub(r"^(`{3,}).*?^\1$", "", text, flags=re.MULTILINE | re.DOTALL)
    return set(re.findall(r"`([^`]+)`", text)) | set(re.findall(r"<code>(.*?)</code>", text))


def test_every_label_annotation_env_var_and_reserved_name_is_on_the_annotations_page() -> None:
    keys = {value for value in vars(pod).values() if isinstance(value, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", value)}
    assert pod.AGENT_IDENTITY in keys  # the pattern finds the constants it is meant to
    keys |= {sidecar.SIDECAR_URL, sidecar.BLUEPRINT_APP_ID, sidecar.AGENT_IDENTITY_APP_ID, pod.SIDECAR_NAME}
    keys |= set(sidecar.VOLUME_NAMES) | {reconcile.FINALIZER}
    spans = code_spans(page("annotations.md"))
    assert keys <= spans, sorted(keys - spans)
    assert any(span.startswith(reconcile.MARKER_PREFIX) for span in spans)
    assert any(span.startswith(reconcile.SPONSORS_PREFIX) for span in spans)


def schema_fields(schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    for name, child in schema.get("properties", {}).items():
        if path or name not in ("apiVersion", "kind", "metadata"):
            yield from _below(child, f"{path}.{name}" if path else name)


def _below(schema: Mapping[str, Any], path: str) -> Iterator[str]:
    yield path
    yield from schema_fields(schema, path)
    if isinstance(schema.get("items"), dict):
        yield from _below(schema["items"], path + "[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _below(schema["additionalProperties"], path + ".NAME")


@pytest.mark.parametrize("crd", sorted((CHART / "crds").glob("*.yaml")), ids=lambda path: path.stem)
def test_every_field_of_each_crd_is_on_the_custom_resources_page(crd: Path) -> None:
    definition = yaml.safe_load(crd.read_text())
    (version,) = definition["spec"]["versions"]
    kind = definition["spec"]["names"]["kind"]
    section = page("custom-resources.md").split(f"## {kind}\n", 1)[1].split("\n## ", 1)[0]
    fields = set(schema_fields(version["schema"]["openAPIV3Schema"]))
    assert {"spec", "status"} <= fields
    assert fields <= code_spans(section), sorted(fields - code_spans(section))


# Values whose keys are Kubernetes' or the user's own (resources, selectors, labels): one row each.
WHOLE = {"resources", "issuerRef", "namespaceSelector", "podSelector", "nodeSelector", "affinity", "labels"}
WHOLE |= {"podAnnotations", "podLabels"}


def value_paths(tree: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in tree.items():
        yield prefix + key
        if isinstance(value, dict) and key not in WHOLE:
            yield from value_paths(value, f"{prefix}{key}.")


def test_every_helm_value_is_on_the_values_page() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())  # JSON is YAML
    paths = set(value_paths(defaults)) | set(value_paths(_properties(schema)))
    spans = code_spans(page("helm-values.md"))
    assert {"sidecar.resources", "controller.directoryClientId", "global"} <= paths
    assert paths <= spans, sorted(paths - spans)


def _properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema as the tree of names it allows."""
    return {name: _properties(child) for name, child in schema.get("properties", {}).items()}


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def test_every_flag_of_every_command_is_in_its_section_of_the_settings_page() -> None:
    text = page("settings.md")
    found = commands(build_parser()[0])
    assert set(found) >= {"inject", "serve", "controller", "check", "entra-commands", "certs"}
    sidecar = text.split("\n## Sidecar settings\n", 1)[1].split("\n## ", 1)[0]
    for name, sub in found.items():
        section = text.split(f"## `entra-webhook {name}`\n", 1)[1].split("\n## ", 1)[0]
        if name in ("inject", "serve"):
            section += sidecar
        flags = {flag for action in sub._actions for flag in action.option_strings if flag not in ("-h", "--help")}
        assert flags, name
        assert flags <= code_spans(section), (name, sorted(flags - code_spans(section)))
    assert "--version" in code_spans(text.split("## `entra-webhook inject`", 1)[0])


def test_every_environment_variable_is_on_the_settings_page_with_its_flag() -> None:
    rows = [line for line in page("settings.md").splitlines() if "| `ENTRA_" in line]
    documented = {tuple(re.findall(r"`([^`]+)`", row)[:2]) for row in rows}
    expected = {(flag_name(name), env_name(name, ENV_PREFIX)) for name in Settings.model_fields}
    expected |= {(flag_name(name), env_name(name, CONTROLLER_PREFIX)) for name in ControllerSettings.model_fields}
    assert documented == expected


def test_every_metric_and_alert_is_on_the_metrics_page() -> None:
    text = page("metrics.md")
    spans = code_spans(text)
    for component in (WEBHOOK, CONTROLLER):
        for name, kind in exported_families(component).items():
            assert (name + "_total" if kind == "counter" else name) in spans, name
    alerts = {alert for group in alert_expressions().values() for alert in group}
    assert len(alerts) == 16
    headings = set(re.findall(r"^#### (\w+)$", text, re.MULTILINE))
    assert headings == alerts


def test_every_reason_is_described_and_has_its_section_on_the_reasons_page() -> None:
    assert set(REASONS) == set(get_args(Reason))
    headings = re.findall(r"^## ([\w-]+)$", page("reasons.md"), re.MULTILINE)
    assert headings == list(REASONS)


def test_the_volume_conflict_reason_names_every_volume_the_sidecar_reserves() -> None:
    meaning = REASONS["volume-conflict"].meaning
    assert [name for name in sidecar.VOLUME_NAMES if f"`{name}`" not in meaning] == []


def test_every_denial_on_the_reasons_page_shows_the_message_the_core_gives() -> None:
    text = page("reasons.md")
    for reason, about in REASONS.items():
        section = text.split(f"\n## {reason}\n", 1)[1].split("\n## ", 1)[0]
        if about.outcome == "denied":
            assert re.search(r"HTTP 4\d\d", section), reason
            assert 'pod "web" in namespace "agents": ' in section, reason


def test_every_failure_the_controller_advises_on_is_on_the_conditions_page() -> None:
    text = (DOCS / "troubleshooting" / "conditions.md").read_text()
    spans = code_spans(text)
    codes = set(advice.GRAPH_ADVICE) | set(advice.TOKEN_ADVICE) | set(advice.DIRECTORY_TOKEN_ADVICE)
    codes |= {reconcile.fit_condition(0)[1], reconcile.fit_condition(10**6)[1], steps.SPONSORS_UNSYNCED}
    assert "AADSTS700213" in codes
    assert codes <= spans, sorted(codes - spans)


def nav_pages(nav: Any) -> Iterator[str]:
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from nav_pages(item)
    elif isinstance(nav, dict):
        for item in nav.values():
            yield from nav_pages(item)


def test_every_page_under_docs_is_in_the_nav_once() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    listed = list(nav_pages(config["nav"]))
    present = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    assert sorted(listed) == present
    assert len(set(listed)) == len(listed)


def test_the_readme_is_short_and_its_links_lead_to_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    targets = [target for target in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in target]
    assert len(targets) > 20
    missing = [target for target in targets if not (ROOT / target.split("#", 1)[0]).exists()]
    assert missing == []
