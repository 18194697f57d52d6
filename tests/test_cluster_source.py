"""The parts of the cluster source that need no cluster (the rest runs in tests/e2e)."""

from __future__ import annotations

import pytest

from webhook.injector.sources.cluster import parse_version


@pytest.mark.parametrize(
    ("major", "minor", "expected"),
    [("1", "20", (1, 20)), ("1", "29+", (1, 29)), ("1", "31", (1, 31))],
)
def test_managed_clusters_minor_versions_with_a_plus_are_read(
    major: str, minor: str, expected: tuple[int, int]
) -> None:
    assert parse_version(major, minor) == expected
