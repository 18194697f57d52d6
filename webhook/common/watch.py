"""List then watch one kind of Kubernetes object, for as long as it takes.

Shared by the webhook's config source and the controller. The watch resumes from the last
resourceVersion, lists again only on 410 Gone, and reconnects with exponential backoff and jitter.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

WATCH_SECONDS = 300
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0

Json = dict[str, Any]


class _Gone(Exception):
    """The resourceVersion is too old: list again."""


class Follower:
    """`list_call(**kwargs)` is a Kubernetes client list function that also serves watches."""

    def __init__(
        self,
        name: str,
        list_call: Callable[..., Any],
        on_list: Callable[[list[Json]], None],
        on_event: Callable[[str, Json], None],
        on_restart: Callable[[str, Exception | None], None] | None = None,
        hint_404: str = "",
    ) -> None:
        self.name = name
        self.list_call = list_call
        self.on_list = on_list
        self.on_event = on_event
        self.on_restart = on_restart
        self.hint_404 = hint_404
        self.stopping = threading.Event()
        self._stream: watch.Watch | None = None

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"watch-{self.name}", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stopping.set()
        if self._stream is not None:
            self._stream.stop()

    def run(self) -> None:
        version: str | None = None
        backoff = BACKOFF_START
        while not self.stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                backoff = BACKOFF_START
            except _Gone:
                self._restarted("gone", None)
                version = None
            except Exception as error:
                if self.stopping.is_set():
                    return
                self._restarted("error", error)
                hint = self.hint_404 if isinstance(error, ApiException) and error.status == 404 else ""
                log.warning("watch of %s failed: %s%s; retrying in %.1fs", self.name, brief(error), hint, backoff)
                self.stopping.wait(backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _list(self) -> str:
        listed = self.list_call(_request_timeout=30)
        listed = listed if isinstance(listed, dict) else listed.to_dict()
        self.on_list(list(listed.get("items") or []))
        return str(listed["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> str:
        stream = watch.Watch()
        self._stream = stream
        try:
            for event in stream.stream(
                self.list_call,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                _request_timeout=(10, WATCH_SECONDS + 30),
            ):
                if event["type"] != "BOOKMARK":
                    self.on_event(event["type"], event["object"])
                version = stream.resource_version or version
        except ApiException as error:
            if error.status == 410:
                raise _Gone from error
            raise
        finally:
            self._stream = None
        return stream.resource_version or version

    def _restarted(self, reason: str, error: Exception | None) -> None:
        if self.on_restart:
            self.on_restart(reason, error)


def brief(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"{error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"
