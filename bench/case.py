"""One timed call of the core benchmark, and how the report names it (`bench.core`, `bench.stages`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Case:
    key: str
    label: str
    description: str
    call: Callable[[], object]
