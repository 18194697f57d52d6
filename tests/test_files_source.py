"""The file config source: directories, reload on change, and the last good snapshot on errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIXTURES
from webhook.admission import Admission
from webhook.models import BLUEPRINT, IDENTITY, ObjectRef
from webhook.review import parse_review
from webhook.settings import Settings
from webhook.sources.files import FileSource, SourceError

USER = "0b5e1c2d-3f4a-4b6c-8d7e-9f0a1b2c3d4e"
APP_ID = "6c1d0b7e-2a3f-4e5d-9c8b-7a6f5e4d3c2b"

IDENTITY_YAML = """\
apiVersion: entra.io/v1alpha1
kind: AgentIdentity
metadata: {{name: {name}, namespace: agents}}
spec: {{blueprint: sales, clientId: f3897825-fd03-45f5-90eb-fdbf26135650}}
"""


def touch_later(path: Path, text: str) -> None:
    """Write, then move the mtime forward: some filesystems keep coarse timestamps."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))


def test_a_directory_is_read_recursively_skipping_hidden_entries(tmp_path: Path) -> None:
    (tmp_path / "team").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "team" / "a.yaml").write_text(IDENTITY_YAML.format(name="a"))
    (tmp_path / ".hidden" / "b.yaml").write_text(IDENTITY_YAML.format(name="b"))
    (tmp_path / "notes.txt").write_text("not yaml")
    index = FileSource([tmp_path]).load()
    assert index.names(IDENTITY, "agents") == ["a"]


def test_a_changed_file_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "ids.yaml"
    path.write_text(IDENTITY_YAML.format(name="a"))
    source = FileSource([path])
    source.load()
    assert source.refresh() is False
    touch_later(path, IDENTITY_YAML.format(name="b"))
    assert source.refresh() is True
    assert source.index.names(IDENTITY, "agents") == ["b"]


def test_a_broken_file_keeps_the_last_good_config(tmp_path: Path) -> None:
    path = tmp_path / "ids.yaml"
    path.write_text(IDENTITY_YAML.format(name="a"))
    source = FileSource([path])
    source.load()
    touch_later(path, "kind: [")
    assert source.refresh() is False
    assert source.index.names(IDENTITY, "agents") == ["a"]
    assert source.last_error is not None
    assert source.last_error.startswith(f"{path}:2:1: not valid YAML")


def test_a_new_file_in_a_directory_is_picked_up(tmp_path: Path) -> None:
    source = FileSource([tmp_path])
    source.load()
    (tmp_path / "new.yaml").write_text(IDENTITY_YAML.format(name="fresh"))
    assert source.refresh() is True
    assert source.index.names(IDENTITY, "agents") == ["fresh"]


def test_lookup_rereads_files_for_an_object_created_a_moment_ago(tmp_path: Path) -> None:
    source = FileSource([tmp_path])
    source.load()
    (tmp_path / "new.yaml").write_text(IDENTITY_YAML.format(name="late"))
    found = asyncio.run(source.lookup(ObjectRef(IDENTITY, "agents", "late")))
    assert found is not None
    assert found.ref.name == "late"


def test_the_running_source_reloads_in_the_background(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "config.yaml", tmp_path / "config.yaml")

    async def scenario() -> list[str]:
        source = FileSource([tmp_path], interval=0.05)
        await source.start()
        (tmp_path / "more.yaml").write_text(IDENTITY_YAML.format(name="zz-added"))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if "zz-added" in source.index.names(IDENTITY, "agents"):
                break
        await source.stop()
        return source.index.names(IDENTITY, "agents")

    assert asyncio.run(scenario())[-1] == "zz-added"


def test_a_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or directory"):
        FileSource([tmp_path / "absent.yaml"]).load()


def test_a_resource_without_name_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: entra.io/v1alpha1\nkind: AgentBlueprint\nmetadata: {namespace: agents}\n")
    with pytest.raises(SourceError, match=f"{path}: AgentBlueprint without metadata.name"):
        FileSource([path]).load()


def test_other_documents_in_config_files_are_ignored() -> None:
    index = FileSource([Path(__file__).parents[1] / "examples"]).load()
    assert index.names(BLUEPRINT, "agents") == ["sales", "support"]
    assert index.names(IDENTITY, "agents") == ["research-agent", "sales-agent"]


def test_a_managed_identity_made_ready_a_moment_ago_is_found_by_the_live_lookup(tmp_path: Path) -> None:
    """`kubectl wait --for=condition=Ready` then a Pod: the webhook's copy may be a moment behind."""
    managed = {"apiVersion": "entra.io/v1alpha1", "kind": "AgentIdentity",
               "metadata": {"name": "fresh", "namespace": "agents"},
               "spec": {"blueprint": "sales", "sponsors": [{"kind": "User", "id": USER}]}}  # fmt: skip
    blueprint = yaml.safe_load_all((FIXTURES / "config.yaml").read_text())
    sales = next(d for d in blueprint if d["kind"] == "AgentBlueprint" and d["metadata"]["name"] == "sales")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump_all([sales, managed]))
    source = FileSource([tmp_path])
    source.load()
    admission = Admission(source, Settings())
    pod = {"metadata": {"name": "p", "annotations": {"entra.io/agent-identity": "fresh"}},
           "spec": {"containers": [{"name": "app", "image": "app:1"}]}}  # fmt: skip
    request = parse_review(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "agents", "object": pod}}).encode())  # fmt: skip
    assert asyncio.run(admission.review(request))["response"]["allowed"] is False
    managed["status"] = {
        "clientId": APP_ID,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned"}],
    }
    touch_later(tmp_path / "config.yaml", yaml.safe_dump_all([sales, managed]))  # what the controller just wrote
    response = asyncio.run(admission.review(request))["response"]
    assert response["allowed"] is True
    assert APP_ID in base64.b64decode(response["patch"]).decode()
