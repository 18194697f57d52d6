"""`check`'s output: one line per check, what is wrong and the fix; the exit status says whether any failed."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal, TextIO

Status = Literal["ok", "warn", "FAIL"]


@dataclass(frozen=True, slots=True)
class Line:
    status: Status
    subject: str
    said: str
    fix: str = ""

    def render(self) -> str:
        text = f"[{self.status:<4}] {self.subject}: {self.said}"
        return text + (f"; fix: {self.fix}" if self.fix else "")


@dataclass
class Report:
    """Lines as they come, written at once so that a slow check shows progress."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    lines: list[Line] = field(default_factory=list)

    def add(self, line: Line) -> Line:
        self.lines.append(line)
        print(line.render(), file=self.out, flush=True)
        return line

    def ok(self, subject: str, said: str) -> Line:
        return self.add(Line("ok", subject, said))

    def warn(self, subject: str, said: str, fix: str = "") -> Line:
        return self.add(Line("warn", subject, said, fix))

    def fail(self, subject: str, said: str, fix: str = "") -> Line:
        return self.add(Line("FAIL", subject, said, fix))

    def section(self, title: str) -> None:
        print(f"\n{title}" if self.lines else title, file=self.out, flush=True)

    @property
    def problems(self) -> int:
        """Lines that are not ok so far."""
        return sum(line.status != "ok" for line in self.lines)

    @property
    def failed(self) -> bool:
        return any(line.status == "FAIL" for line in self.lines)

    def summary(self) -> int:
        """The closing line, and the exit status: 1 when a check failed."""
        failed = sum(line.status == "FAIL" for line in self.lines)
        warned = sum(line.status == "warn" for line in self.lines)
        passed = len(self.lines) - failed - warned
        print(f"\n{passed} passed, {warned} warnings, {failed} failed", file=self.out, flush=True)
        return 1 if failed else 0
