"""The metric names a PromQL expression selects, for checking dashboards and alerts against what we export.

A small lexer, not a parser: it drops strings, label matchers `{...}`, ranges `[...]` and Grafana
variables, skips function and aggregation names (followed by `(`, or by `by`/`without`), keywords, and the label lists
after by/without/on/ignoring/group_left/group_right. Every identifier left is a metric name.
"""

from __future__ import annotations

import re

_TOKENS = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<matchers>\{[^}]*\})
  | (?P<range>\[[^\]]*\])
  | (?P<variable>\$\{[^}]*\}|\$\w+)
  | (?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])?)
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<open>\()
  | (?P<other>[^\s(])
  | \s+
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def metric_names(expression: str) -> set[str]:
    tokens = [(m.lastgroup, m.group()) for m in _TOKENS.finditer(expression) if m.lastgroup]
    names: set[str] = set()
    skip_list = False
    depth_of_list: int | None = None
    depth = 0
    for index, (kind, text) in enumerate(tokens):
        following, following_text = tokens[index + 1] if index + 1 < len(tokens) else (None, "")
        if kind == "open":
            depth += 1
            if skip_list:
                depth_of_list, skip_list = depth, False
            continue
        if kind == "other" and text == ")":
            if depth_of_list == depth:
                depth_of_list = None
            depth -= 1
            continue
        if kind != "name" or depth_of_list is not None:
            continue
        if text.lower() in _LABEL_LISTS:
            skip_list = True
        elif text.lower() not in _KEYWORDS and following != "open" and following_text.lower() not in _LABEL_LISTS:
            names.add(text)  # not a function, nor an aggregation written `sum by (x) (...)`
    return names


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<query>.*?)\s*,)?\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$")


def grafana_variable_metrics(query: str) -> set[str]:
    """Metrics of a Grafana variable query: label_values(METRIC_OR_QUERY, label), or plain PromQL."""
    match = _LABEL_VALUES.match(query)
    if match:
        return metric_names(match.group("query") or "")
    return metric_names(query)
