"""Configuration from the cluster: list then watch both resources across all namespaces.

Admissions read the in-memory index only. The watch resumes from the last resourceVersion,
re-lists on 410 Gone, and reconnects with exponential backoff and jitter. The only API call an
admission can cause is one short live GET when a Pod names an object the index does not have
(it may have been created a moment before the Pod).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.common.models import (
    GROUP,
    INSTALL_CRDS,
    KINDS,
    PLURALS,
    VERSION,
    ConfigObject,
    NotConfig,
    ObjectRef,
    parse_object,
)
from webhook.common.watch import Follower
from webhook.core.index import ConfigIndex

log = logging.getLogger(__name__)


class ClusterSource:
    def __init__(
        self,
        api: client.ApiClient,
        lookup_timeout: float = 2.0,
        on_watch_restart: Callable[[str, str], None] | None = None,
    ) -> None:
        self.api = api
        self.objects = client.CustomObjectsApi(api)
        self.lookup_timeout = lookup_timeout
        self.on_watch_restart = on_watch_restart
        self._index = ConfigIndex()
        self._lock = threading.Lock()
        self._listed: set[str] = set()
        self._followers: list[Follower] = []

    @property
    def index(self) -> ConfigIndex:
        return self._index

    @property
    def ready(self) -> bool:
        return self._listed == set(KINDS)

    async def start(self) -> None:
        for kind in KINDS:
            follower = self._follower(kind)
            self._followers.append(follower)
            follower.start()

    async def stop(self) -> None:
        for follower in self._followers:
            follower.stop()

    async def lookup(self, ref: ObjectRef) -> ConfigObject | None:
        """One GET in a worker thread, which also folds the answer into the index (under the lock,
        which a re-list may hold for a while: never on the event loop)."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, self._fetch, ref), self.lookup_timeout + 0.5)
        except (TimeoutError, ApiException, OSError) as error:
            log.warning("live lookup of %s failed: %s", ref, error)
            return None

    def _fetch(self, ref: ObjectRef) -> ConfigObject | None:
        try:
            raw: dict[str, Any] = self.objects.get_namespaced_custom_object(
                GROUP, VERSION, ref.namespace, PLURALS[ref.kind], ref.name, _request_timeout=self.lookup_timeout
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        found = self._parse(raw)
        if found is not None:
            self._update(lambda index: index.with_object(found))
        return found

    def _follower(self, kind: str) -> Follower:
        def on_list(items: list[dict[str, Any]]) -> None:
            objects = [found for raw in items if (found := self._parse(raw, kind)) is not None]
            self._update(lambda index: index.replace_kind(kind, objects))
            if kind not in self._listed:
                log.info("listed %d %s", len(objects), PLURALS[kind])
            self._listed.add(kind)

        def on_restart(reason: str, error: Exception | None) -> None:
            del error
            if self.on_watch_restart:
                self.on_watch_restart(PLURALS[kind], reason)

        return Follower(
            PLURALS[kind],
            functools.partial(self.objects.list_cluster_custom_object, GROUP, VERSION, PLURALS[kind]),
            on_list,
            functools.partial(self._apply, kind),
            on_restart,
            hint_404=f" (are the CRDs installed? {INSTALL_CRDS})",
        )

    def _apply(self, kind: str, kind_of_event: str, raw: dict[str, Any]) -> None:
        if kind_of_event == "DELETED":
            metadata = raw.get("metadata", {})
            ref = ObjectRef(kind, str(metadata.get("namespace")), str(metadata.get("name")))
            self._update(lambda index: index.without(ref))
            return
        found = self._parse(raw, kind)
        if found is not None:
            self._update(lambda index: index.with_object(found))

    def _parse(self, raw: dict[str, Any], kind: str | None = None) -> ConfigObject | None:
        raw.setdefault("kind", kind)
        raw.setdefault("apiVersion", f"{GROUP}/{VERSION}")
        try:
            return parse_object(raw)
        except NotConfig as error:
            log.warning("ignored: %s", error)
            return None

    def _update(self, change: Callable[[ConfigIndex], ConfigIndex]) -> None:
        with self._lock:
            self._index = change(self._index)


def server_version(api: client.ApiClient) -> tuple[int, int]:
    """The API server's (major, minor); managed clusters report minors like "29+"."""
    info = client.VersionApi(api).get_code(_request_timeout=10)
    return parse_version(info.major, info.minor)


def parse_version(major: str, minor: str) -> tuple[int, int]:
    return int("".join(filter(str.isdigit, major))), int("".join(filter(str.isdigit, minor)))
