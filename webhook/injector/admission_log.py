"""The admission log: one JSON line per Pod admission, in the shape of every other log line."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any, TextIO

import orjson

from webhook.common.logs import MESSAGE_LIMIT, timestamp
from webhook.common.text import NAME_LIMIT, clip
from webhook.core.decision import Inject
from webhook.core.pod import owner, pod_name
from webhook.injector.admission import Admitted


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
