"""Kubernetes core/v1 Events, in the one shape both processes record them.

`kubectl describe` shows them under the object they are about; the limits are the API server's own
(a longer reason or message is refused, and the Event with it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from webhook.common.text import clip

REASON_LIMIT = 128
MESSAGE_LIMIT = 1024


def event(
    involved: Mapping[str, Any],
    reason: str,
    message: str,
    *,
    warning: bool,
    component: str,
    instance: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """An Event on `involved` (an object reference with at least its name and namespace)."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{involved['name']}.", "namespace": involved["namespace"]},
        "involvedObject": dict(involved),
        "reason": reason[:REASON_LIMIT],
        "message": clip(message, MESSAGE_LIMIT - 1),
        "type": "Warning" if warning else "Normal",
        "source": {"component": component, "host": instance},
        "reportingComponent": f"entra.io/{component}",
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
