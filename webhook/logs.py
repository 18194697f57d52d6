"""JSON logs, one object per line, so a log pipeline can filter admissions by field."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

from webhook.admission import Admitted
from webhook.decision import Inject
from webhook.pod import mapping, owner

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({key: value for key, value in vars(record).items() if key not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.error", "kubernetes", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def admission_line(admitted: Admitted) -> None:
    """One JSON line per Pod admission; messages name objects, never secret values (we hold none)."""
    pod = admitted.request.object or {}
    metadata = mapping(pod, "metadata")
    controller = owner(pod)
    outcome = admitted.outcome
    fields: dict[str, Any] = {
        "uid": admitted.request.uid,
        "namespace": admitted.request.namespace,
        "pod": metadata.get("name") or f"{metadata.get('generateName') or ''}*",
        "owner": f"{controller.get('kind')}/{controller.get('name')}" if controller else None,
        "outcome": admitted.outcome_name,
        "reason": admitted.reason,
        "micros": admitted.micros,
        "dry_run": admitted.request.dry_run,
    }
    if isinstance(outcome, Inject):
        fields |= {"blueprint": outcome.blueprint, "identity": outcome.identity, "ops": len(outcome.ops)}
    else:
        fields["detail"] = outcome.message
    level = logging.WARNING if admitted.outcome_name in {"denied", "error"} else logging.INFO
    _admissions.log(level, "admission", extra=fields)


_admissions = logging.getLogger("webhook.admissions")
