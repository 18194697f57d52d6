"""JSON logs, one object per line, so a log pipeline can filter admissions by field."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import sys
import time
from typing import Any, TextIO

import orjson

from webhook.admission import Admitted
from webhook.decision import Inject
from webhook.pod import owner, pod_name
from webhook.text import NAME_LIMIT, clip

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
MESSAGE_LIMIT = 2048


_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text up to the seconds


def timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds, as `datetime.isoformat` writes it: the date and time are
    formatted once a second (that formatting cost more than the rest of an admission line)."""
    global _second  # noqa: PLW0603 (a one-entry cache: swapped whole, so threads see one or the other)
    fraction, seconds = math.modf(created)  # rounded to the microsecond as datetime rounds it
    whole, micros = int(seconds), round(fraction * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    cached = _second
    if cached[0] != whole:
        cached = (whole, dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        _second = cached
    return f"{cached[1]}.{micros // 1000:03d}+00:00"


def _line(created: float, level: str, logger: str, msg: str, fields: dict[str, Any]) -> str:
    """The shape of every log line: time, level, logger, msg, then the fields."""
    head = {"time": timestamp(created), "level": level, "logger": logger, "msg": msg}
    return orjson.dumps(head | fields, default=str).decode()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {key: value for key, value in vars(record).items() if key not in _STANDARD}
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        return _line(record.created, record.levelname.lower(), record.name, record.getMessage(), fields)


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

    On the event loop, the lines of one loop iteration go out in one write at its end (a write to
    a pipe or file cost more than making the line; under load several admissions finish in one
    iteration); with no loop running, each line is written at once.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.logger = logging.getLogger("webhook.admissions")
        self._pending: list[str] | None = None  # lines waiting for the end of this loop iteration

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            (self.stream or sys.stderr).write("".join(pending))

    def _write(self, line: str) -> None:
        if self._pending is not None:
            self._pending.append(line)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            (self.stream or sys.stderr).write(line)
            return
        self._pending = [line]
        loop.call_soon(self.flush)

    def __call__(self, admitted: Admitted) -> None:
        warn = admitted.outcome_name in _WARNED
        if not self.logger.isEnabledFor(logging.WARNING if warn else logging.INFO):
            return
        request, outcome = admitted.request, admitted.outcome
        pod = request.object or _NO_POD
        controller = owner(pod)
        # One dict in the order of every log line (time, level, logger, msg, then the fields).
        line: dict[str, Any] = {
            "time": timestamp(time.time()),
            "level": "warning" if warn else "info",
            "logger": self.logger.name,
            "msg": "admission",
            "uid": clip(request.uid, 128),
            "namespace": clip(request.namespace, NAME_LIMIT),
            "pod": pod_name(pod) or "*",
            "owner": clip(f"{controller['kind']}/{controller['name']}", 2 * NAME_LIMIT) if controller else None,
            "outcome": admitted.outcome_name,
            "reason": admitted.reason,
            "micros": admitted.micros,
            "dry_run": request.dry_run,
        }
        if isinstance(outcome, Inject):
            line["blueprint"], line["identity"], line["ops"] = outcome.blueprint, outcome.identity, outcome.op_count
        else:
            line["detail"] = clip(outcome.message, MESSAGE_LIMIT)
        try:
            text = orjson.dumps(line).decode()
        except TypeError:  # orjson refuses a string (lone surrogates): the line still goes out, in ASCII
            fields = list(line.items())
            head, rest = dict(fields[:_HEAD]), {key: ascii(value) for key, value in fields[_HEAD:]}
            text = orjson.dumps(head | rest).decode()
        self._write(text + "\n")


_WARNED = frozenset({"denied", "error"})
_HEAD = 4  # time, level, logger, msg
_NO_POD: dict[str, Any] = {}  # read only
