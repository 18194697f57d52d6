"""Label selectors as the API server evaluates a webhook's namespaceSelector and objectSelector, so that `check`
can say why a Pod is or is not sent to the webhook, and which labels would send one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """An absent or empty selector matches everything."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression(item, labels) for item in selector.get("matchExpressions") or [])


def _expression(item: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, operator, values = item.get("key", ""), item.get("operator", ""), item.get("values") or []
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def satisfying(selector: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Labels that match `selector` (its matchLabels and each In's first value), or None if it asks for more."""
    labels = dict((selector or {}).get("matchLabels") or {})
    for item in (selector or {}).get("matchExpressions") or []:
        if item.get("operator") == "In" and item.get("values"):
            labels.setdefault(item["key"], item["values"][0])
        elif item.get("operator") == "Exists":
            labels.setdefault(item["key"], "yes")
    return labels if matches(selector, labels) else None


def describe(selector: Mapping[str, Any] | None) -> str:
    """`entra.io/inject=enabled`, `entra.io/inject notin (disabled)`: as kubectl writes selectors."""
    if not selector:
        return "everything"
    parts = [f"{key}={value}" for key, value in (selector.get("matchLabels") or {}).items()]
    for item in selector.get("matchExpressions") or []:
        operator, key = item.get("operator", ""), item.get("key", "")
        values = ",".join(item.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(operator, f"!{key}")
        )
    return ", ".join(parts)
