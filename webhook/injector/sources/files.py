"""Configuration from YAML files and directories, reloaded when they change, without a restart.

Directories are read recursively for `*.yaml`, `*.yml` and `*.json`, skipping hidden entries, so a
mounted ConfigMap (with its `..data` symlink swaps) works as a config directory. Reloads run in a
worker thread and swap the snapshot when done, so requests never wait for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from webhook.common.models import BLUEPRINT, IDENTITY, ConfigObject, NotConfig, ObjectRef, is_config, parse_object
from webhook.core.documents import DocumentError, load_documents
from webhook.core.index import ConfigIndex
from webhook.core.workloads import flatten

log = logging.getLogger(__name__)
SUFFIXES = (".yaml", ".yml", ".json")
Fingerprint = tuple[tuple[str, int, int], ...]


class SourceError(ValueError):
    pass


def config_objects(documents: Iterable[object], source: str, default_namespace: str) -> list[ConfigObject]:
    """Our resources among `documents` and the lists among them (what `kubectl get ... -o yaml` prints); other
    kinds are not configuration and are passed over."""
    found = []
    for document in flatten(documents):
        if isinstance(document, dict) and is_config(document):
            try:
                found.append(parse_object(document, default_namespace))
            except NotConfig as error:
                raise SourceError(f"{source}: {error}") from None
    return found


@dataclass(frozen=True, slots=True)
class _Parsed:
    stamp: tuple[int, int]  # (mtime_ns, size) when read
    objects: list[ConfigObject]


class FileSource:
    """Files read once at start; then a background task re-reads what changed, in a worker thread.

    Admissions never touch the disk. A live lookup (a Pod naming an object the snapshot lacks)
    waits for the next background scan instead of scanning itself: one scan serves every lookup
    waiting for it, and scans run at most once per `min_gap` however many Pods ask.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        default_namespace: str = "default",
        interval: float = 1.0,
        min_gap: float = 0.25,
        lookup_timeout: float = 2.0,
    ) -> None:
        self.paths = list(paths)
        self.default_namespace = default_namespace
        self.interval = interval
        self.min_gap = min_gap
        self.lookup_timeout = lookup_timeout
        self.last_error: str | None = None
        self._fingerprint: Fingerprint | None = None
        self._parsed: dict[str, _Parsed] = {}
        self._index = ConfigIndex()
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._waiting: list[asyncio.Future[None]] = []

    @property
    def index(self) -> ConfigIndex:
        return self._index

    @property
    def ready(self) -> bool:
        return self._fingerprint is not None

    def load(self) -> ConfigIndex:
        """Read the files now, re-parsing only those changed since the last load.

        Raises `SourceError` naming the file and the problem, and then keeps the previous snapshot.
        """
        return self._load(self._scan())

    def refresh(self) -> bool:
        """Reload if any file changed; on a broken file keep serving the last good snapshot."""
        try:
            fingerprint = self._scan()
            if fingerprint == self._fingerprint:
                return False
            self._load(fingerprint)
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
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._watch(self._wake))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task, self._wake = None, None

    async def lookup(self, ref: ObjectRef) -> ConfigObject | None:
        """The object as the next background scan sees it (a file written just before the Pod)."""
        if self._wake is not None:
            scanned = asyncio.get_running_loop().create_future()
            self._waiting.append(scanned)
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(scanned), self.lookup_timeout)
        return self._index.get(ref.kind, ref.namespace, ref.name)

    async def _watch(self, wake: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.interval)
            wake.clear()
            waiting, self._waiting = self._waiting, []
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # a bug or an OS surprise must not end reloading for good
                log.exception("config reload failed; trying again")
            finally:
                for scanned in waiting:
                    if not scanned.done():
                        scanned.set_result(None)
            await asyncio.sleep(self.min_gap)

    def _load(self, fingerprint: Fingerprint) -> ConfigIndex:
        parsed: dict[str, _Parsed] = {}
        for path, mtime, size in fingerprint:
            cached = self._parsed.get(path)
            parsed[path] = cached if cached and cached.stamp == (mtime, size) else self._read(path, (mtime, size))
        index = ConfigIndex.of(obj for path, _, _ in fingerprint for obj in parsed[path].objects)
        self._parsed, self._index, self._fingerprint, self.last_error = parsed, index, fingerprint, None
        return index

    def _read(self, path: str, stamp: tuple[int, int]) -> _Parsed:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SourceError(f"{path}: cannot read: {error}") from None
        try:
            documents = load_documents(text, path)
        except DocumentError as error:
            raise SourceError(str(error)) from None
        return _Parsed(stamp, config_objects(documents, path, self.default_namespace))

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
