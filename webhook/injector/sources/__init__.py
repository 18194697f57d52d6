"""Where the `AgentBlueprint`/`AgentIdentity` configuration comes from: files, or the cluster.

The core reads only `ConfigIndex` snapshots; a source keeps one current and may do a live
lookup when a Pod names an object the snapshot does not have yet.
"""

from __future__ import annotations

from typing import Protocol

from webhook.common.models import ConfigObject, ObjectRef
from webhook.core.index import ConfigIndex


class ConfigSource(Protocol):
    @property
    def index(self) -> ConfigIndex:
        """The current snapshot: read it once per admission, never hold it across awaits."""
        ...

    @property
    def ready(self) -> bool:
        """True once the first full load has completed."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def lookup(self, ref: ObjectRef) -> ConfigObject | None:
        """A fresh look for one object the snapshot misses (it may have been created a moment ago)."""
        ...
