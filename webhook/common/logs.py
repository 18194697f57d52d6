"""JSON logs, one object per line, so a log pipeline can filter admissions by field."""

from __future__ import annotations

import datetime as dt
import logging
import math
import sys
from typing import Any

import orjson

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
