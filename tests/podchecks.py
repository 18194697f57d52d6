"""Checks of a patch against the Pod it was made for, shared by the golden and the property suites."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch


def assert_only_added(before: Any, after: Any, where: str = "") -> None:
    """Everything the Pod had is still there, unchanged and in the same order."""
    if isinstance(before, dict):
        assert isinstance(after, dict), where
        for key, value in before.items():
            assert key in after, f"{where}/{key} was removed"
            if value is not None:  # null is absent: setting it is adding, not replacing
                assert_only_added(value, after[key], f"{where}/{key}")
    elif isinstance(before, list):
        assert isinstance(after, list), where
        position = 0
        for item in before:  # the old items, in order, as a subsequence of the new list
            while position < len(after) and after[position] != item and not _extends(item, after[position]):
                position += 1
            assert position < len(after), f"{where}: {item!r} lost or reordered"
            assert_only_added(item, after[position], f"{where}[{position}]")
            position += 1
    else:
        assert before == after, f"{where} changed from {before!r} to {after!r}"


def _extends(before: Any, after: Any) -> bool:
    return isinstance(before, dict) and isinstance(after, dict) and before.get("name", object()) == after.get("name")


def overwritten(pod: Any, ops: list[dict[str, Any]]) -> list[str]:
    """Paths where an `add` op replaced a present, non-null value (JSON Patch `add` on a member replaces it)."""
    document = copy.deepcopy(pod)
    found = []
    for op in ops:
        tokens = [token.replace("~1", "/").replace("~0", "~") for token in op["path"].split("/")[1:]]
        parent = document
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        if op["op"] != "add" or (isinstance(parent, dict) and parent.get(tokens[-1]) is not None):
            found.append(op["path"])
        document = jsonpatch.apply_patch(document, [op])
    return found
