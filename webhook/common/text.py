"""Untrusted values in messages: clipped, quoted and typed, so a message never grows with its input.

A denial, a warning or a log line may quote what a Pod carries (an annotation value, a container
name); anyone who can create a Pod chooses those, so every quote goes through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

QUOTE_LIMIT = 64
NAME_LIMIT = 253  # the longest Kubernetes object name: real names are never cut
LIST_LIMIT = 10


def clip(value: str, limit: int = QUOTE_LIMIT) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def elide(value: str, limit: int) -> str:
    """`value` within `limit` characters, its middle dropped at word boundaries: a message someone else wrote
    (a condition, a validation error) keeps its start (what is wrong) and its end (the fix)."""
    if len(value) <= limit:
        return value
    marker = " … "
    tail_budget = (limit - len(marker)) // 3
    head_budget = limit - len(marker) - tail_budget
    head = value[:head_budget]
    head = head.rsplit(" ", 1)[0] if " " in head[head_budget // 2 :] else head
    tail = value[-tail_budget:] if tail_budget else ""
    tail = tail.split(" ", 1)[1] if " " in tail[: tail_budget // 2] else tail
    return head.rstrip() + marker + tail.lstrip()


def quoted(value: str, limit: int = QUOTE_LIMIT) -> str:
    """`value` as Python's repr of its first `limit` characters: 'abc', 'abc…'."""
    return repr(clip(value, limit))


def listing(rendered: Iterable[str], limit: int = LIST_LIMIT) -> str:
    """`a, b, c`, or the first `limit` and how many more (render each with `clip` or `quoted`)."""
    shown: list[str] = []
    more = 0
    for item in rendered:
        if len(shown) < limit:
            shown.append(item)
        else:
            more += 1
    return ", ".join(shown) + (f" and {more:,} more" if more else "")


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, with its article, for "must be X, got Y"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"  # only from YAML: a date, bytes, a set
