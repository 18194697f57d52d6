"""Configuration from YAML files and directories, reloaded when they change, without a restart.

Directories are read recursively for `*.yaml`, `*.yml` and `*.json`, skipping hidden entries, so a
mounted ConfigMap (with its `..data` symlink swaps) works as a config directory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from webhook.documents import DocumentError, load_documents
from webhook.index import ConfigIndex
from webhook.models import BLUEPRINT, IDENTITY, ConfigObject, NotConfig, ObjectRef, is_config, parse_object

log = logging.getLogger(__name__)
SUFFIXES = (".yaml", ".yml", ".json")
Fingerprint = tuple[tuple[str, int, int], ...]


class SourceError(ValueError):
    pass


def config_objects(documents: Iterable[object], source: str, default_namespace: str) -> list[ConfigObject]:
    """Our resources among `documents`; other kinds are not configuration and are passed over."""
    found = []
    for document in documents:
        if isinstance(document, dict) and is_config(document):
            try:
                found.append(parse_object(document, default_namespace))
            except NotConfig as error:
                raise SourceError(f"{source}: {error}") from None
    return found


class FileSource:
    def __init__(self, paths: Sequence[Path], default_namespace: str = "default", interval: float = 1.0) -> None:
        self.paths = list(paths)
        self.default_namespace = default_namespace
        self.interval = interval
        self.last_error: str | None = None
        self._fingerprint: Fingerprint | None = None
        self._index = ConfigIndex()
        self._task: asyncio.Task[None] | None = None

    @property
    def index(self) -> ConfigIndex:
        return self._index

    @property
    def ready(self) -> bool:
        return self._fingerprint is not None

    def load(self) -> ConfigIndex:
        """Read every file now; raises `SourceError` naming the file and the problem."""
        fingerprint = self._scan()
        objects: list[ConfigObject] = []
        for path, _, _ in fingerprint:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise SourceError(f"{path}: cannot read: {error}") from None
            try:
                documents = load_documents(text, path)
            except DocumentError as error:
                raise SourceError(str(error)) from None
            objects += config_objects(documents, path, self.default_namespace)
        self._index = ConfigIndex.of(objects)
        self._fingerprint = fingerprint
        self.last_error = None
        return self._index

    def refresh(self) -> bool:
        """Reload if any file changed; on a broken file keep serving the last good snapshot."""
        try:
            if self._scan() == self._fingerprint:
                return False
            self.load()
        except SourceError as error:
            if str(error) != self.last_error:
                log.error("config not reloaded, still serving the previous one: %s", error)
            self.last_error = str(error)
            return False
        log.info(
            "config reloaded: %d blueprints, %d identities", self._index.count(BLUEPRINT), self._index.count(IDENTITY)
        )
        return True

    async def start(self) -> None:
        if self._fingerprint is None:
            self.load()
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def lookup(self, ref: ObjectRef) -> ConfigObject | None:
        self.refresh()
        return self._index.get(ref.kind, ref.namespace, ref.name)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.refresh()

    def _scan(self) -> Fingerprint:
        files: list[Path] = []
        for root in self.paths:
            if root.is_dir():
                files += sorted(
                    path
                    for path in root.rglob("*")
                    if path.suffix in SUFFIXES
                    and path.is_file()
                    and not any(part.startswith(".") for part in path.relative_to(root).parts)
                )
            elif root.exists():
                files.append(root)
            else:
                raise SourceError(f"{root}: no such file or directory (given as config)")
        fingerprint = []
        for path in files:
            try:
                stat = path.stat()
            except OSError as error:
                raise SourceError(f"{path}: cannot read: {error}") from None
            fingerprint.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(fingerprint)
