"""The file config source: directories, reload on change, and the last good snapshot on errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES
from webhook.common.models import BLUEPRINT, IDENTITY, AgentIdentity, ConfigObject, ObjectRef
from webhook.core.review import parse_review
from webhook.core.settings import Settings
from webhook.injector.admission import Admission
from webhook.injector.sources.files import FileSource, Fingerprint, SourceError

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


def test_a_lookup_finds_a_file_written_a_moment_ago_through_the_next_background_scan(tmp_path: Path) -> None:
    async def scenario() -> str | None:
        source = FileSource([tmp_path], interval=3600)  # only the lookup can bring the scan forward
        await source.start()
        (tmp_path / "new.yaml").write_text(IDENTITY_YAML.format(name="late"))
        found = await source.lookup(ObjectRef(IDENTITY, "agents", "late"))
        await source.stop()
        return found.ref.name if found else None

    assert asyncio.run(scenario()) == "late"


def test_a_lookup_never_reads_the_disk_itself(tmp_path: Path) -> None:
    source = FileSource([tmp_path])
    source.load()
    (tmp_path / "new.yaml").write_text(IDENTITY_YAML.format(name="late"))
    assert asyncio.run(source.lookup(ObjectRef(IDENTITY, "agents", "late"))) is None  # no background task: no scan


def test_many_lookups_at_once_share_one_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for number in range(20):
        (tmp_path / f"ids-{number}.yaml").write_text(IDENTITY_YAML.format(name=f"id-{number}"))
    scans: list[str] = []
    original = FileSource._scan

    def counted(self: FileSource) -> Fingerprint:
        scans.append(threading.current_thread().name)
        return original(self)

    monkeypatch.setattr(FileSource, "_scan", counted)

    async def scenario() -> list[ConfigObject | None]:
        source = FileSource([tmp_path], interval=3600, min_gap=0.2)
        await source.start()
        scans.clear()
        found = await asyncio.gather(*(source.lookup(ObjectRef(IDENTITY, "agents", "nobody")) for _ in range(100)))
        await source.stop()
        return found

    assert asyncio.run(scenario()) == [None] * 100
    assert len(scans) == 1
    assert scans[0] != threading.main_thread().name  # in a worker thread, never on the event loop


def test_a_reload_parses_only_the_files_that_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [tmp_path / f"ids-{number}.yaml" for number in range(3)]
    for number, path in enumerate(paths):
        path.write_text(IDENTITY_YAML.format(name=f"id-{number}"))
    source = FileSource([tmp_path])
    source.load()
    read: list[str] = []
    original = FileSource._read

    def counted(self: FileSource, path: str, stamp: tuple[int, int]) -> Any:
        read.append(Path(path).name)
        return original(self, path, stamp)

    monkeypatch.setattr(FileSource, "_read", counted)
    touch_later(paths[1], IDENTITY_YAML.format(name="renamed"))
    assert source.refresh() is True
    assert read == ["ids-1.yaml"]
    assert source.index.names(IDENTITY, "agents") == ["id-0", "id-2", "renamed"]


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
    admission = Admission(source, Settings())
    pod = {"metadata": {"name": "p", "annotations": {"entra.io/agent-identity": "fresh"}},
           "spec": {"containers": [{"name": "app", "image": "app:1"}]}}  # fmt: skip
    request = parse_review(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": "agents", "object": pod}}).encode())  # fmt: skip

    async def ready_a_moment_before_the_pod() -> dict[str, Any]:
        await source.start()  # as `serve` does: the live lookup waits for the background scan
        try:
            assert (await admission.review(request))["response"]["allowed"] is False
            managed["status"] = {
                "clientId": APP_ID,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned"}],
            }
            touch_later(tmp_path / "config.yaml", yaml.safe_dump_all([sales, managed]))  # what the controller wrote
            reply: dict[str, Any] = (await admission.review(request))["response"]
            return reply
        finally:
            await source.stop()

    response = asyncio.run(ready_a_moment_before_the_pod())
    assert response["allowed"] is True
    assert APP_ID in base64.b64decode(response["patch"]).decode()


def test_resources_inside_a_v1_list_are_read_as_kubectl_get_writes_them() -> None:
    index = FileSource([FIXTURES / "exported-config.yaml"]).load()
    assert index.names(BLUEPRINT, "agents") == ["sales"]
    assert index.names(IDENTITY, "agents") == ["research-agent"]
    identity = index.get(IDENTITY, "agents", "research-agent")
    assert isinstance(identity, AgentIdentity)
    assert (identity.client_id, identity.ready) == (APP_ID, True)
