"""JSON logs, one object per line, so a log pipeline can filter admissions by field."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

import orjson

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


class AdmissionLog:
    """One JSON line per Pod admission, written straight to stderr.

    The hot path skips the logging machinery (record, caller lookup, formatter, handler lock),
    which cost more than deciding the Pod; the line has the same shape as every other log line.
    Messages name objects, never secret values (the webhook holds none).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.logger = logging.getLogger("webhook.admissions")

    def __call__(self, admitted: Admitted) -> None:
        warn = admitted.outcome_name in {"denied", "error"}
        level = logging.WARNING if warn else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        pod = admitted.request.object or {}
        metadata = mapping(pod, "metadata")
        controller = owner(pod)
        outcome = admitted.outcome
        line: dict[str, Any] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "level": "warning" if warn else "info",
            "logger": self.logger.name,
            "msg": "admission",
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
            line |= {"blueprint": outcome.blueprint, "identity": outcome.identity, "ops": len(outcome.ops)}
        else:
            line["detail"] = outcome.message
        (self.stream or sys.stderr).write(orjson.dumps(line, default=str).decode() + "\n")
