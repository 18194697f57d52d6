"""Hypothesis budgets for the property-based suites, and the counts `make fuzz` prints.

`HYPOTHESIS_PROFILE=long` (what `make fuzz` sets) runs the long campaign; the default keeps every
property suite to a few seconds so `make test` runs them on every change.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
LONG = PROFILE == "long"

settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile(
    "long", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile(PROFILE)

#: examples run, by suite and kind, printed at the end of the session (see tests/conftest.py)
COUNTS: Counter[str] = Counter()


def budget(quick: int, long: int) -> settings:
    """`quick` examples by default, `long` in the long campaign."""
    return settings(max_examples=long if LONG else quick)


def count(what: str, amount: int = 1) -> None:
    COUNTS[what] += amount
