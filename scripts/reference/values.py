"""docs/reference/helm-values.md: every value of the chart, from values.schema.json, values.yaml and its comments.

The schema says what is allowed, values.yaml what the default is, and the comment above a key in values.yaml
what it is for (as a Helm user reads it there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from scripts.reference.crds import PATTERNS as CRD_PATTERNS
from scripts.reference.crds import bounds
from scripts.reference.markdown import code, literal, page, table

Schema = Mapping[str, Any]

# Values whose keys are Kubernetes' own (resources, label selectors, an issuer reference): one row each, the
# keys they take listed, rather than a row per key.
WHOLE = frozenset({"resources", "namespaceSelector", "podSelector", "issuerRef"})
QUANTITY = "^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
PATTERNS = {
    **CRD_PATTERNS,
    QUANTITY: "a Kubernetes quantity",
    "^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$": "empty, or a DNS label",
    "^$|^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$": "empty, or a GUID",
    "^(sha256:[0-9a-f]{64})?$": "empty, or `sha256:` and 64 hex digits",
    "^https://.+": "an https URL",
}
_KEY = re.compile(r"^( *)([A-Za-z][\w-]*):")


def comments(text: str) -> dict[str, str]:
    """The comment block right above each key of a block-style YAML file, by dotted path."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        key = _KEY.match(line)
        if key:
            indent = len(key[1])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, key[2]))
            if pending:
                found[".".join(name for _, name in stack)] = " ".join(pending)
        pending = []
    return found


def values(schema: Schema, defaults: Any, path: str = "") -> Iterator[tuple[str, Schema, Any, bool]]:
    """(path, schema, default, is a group) for every value a user sets, and every group of them, in the
    schema's order."""
    for name, child in schema.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        default = defaults.get(name, _UNSET) if isinstance(defaults, dict) else _UNSET
        if "properties" in child and name not in WHOLE:
            yield here, child, _UNSET, True
            yield from values(child, default, here)
        else:
            yield here, child, default, False


_UNSET = object()


def allowed(schema: Schema) -> str:
    said = []
    kind = schema.get("type")
    if "enum" in schema:
        said.append("one of " + ", ".join(literal(value) for value in schema["enum"]))
    elif kind:
        said.append(str(kind))
    if "pattern" in schema:
        said.append(PATTERNS.get(schema["pattern"], "matches " + code(schema["pattern"])))
    if "minimum" in schema or "maximum" in schema:
        said.append(bounds(schema.get("minimum"), schema.get("maximum"), ""))
    if "exclusiveMinimum" in schema:
        said.append(f"above {schema['exclusiveMinimum']}")
    if "minLength" in schema or "maxLength" in schema:
        said.append(bounds(schema.get("minLength"), schema.get("maxLength"), " characters"))
    if "not" in schema and "const" in schema["not"]:
        said.append(f"not {literal(schema['not']['const'])}")
    if "properties" in schema:
        said.append("keys " + ", ".join(code(key) for key in _keys(schema)))
    items = schema.get("items")
    if isinstance(items, dict) and "properties" in items:
        said.append("items with " + ", ".join(code(key) for key in items["properties"]))
    return "; ".join(said)


def _keys(schema: Schema, path: str = "") -> Iterator[str]:
    for name, child in schema.get("properties", {}).items():
        if "properties" in child:
            yield from _keys(child, f"{path}{name}.")
        else:
            yield path + name


def render(chart: Path) -> str:
    schema = json.loads((chart / "values.schema.json").read_text())
    text = (chart / "values.yaml").read_text()
    defaults, notes = yaml.safe_load(text), comments(text)
    rows = []
    for path, child, default, group in values(schema, defaults):
        note, described = notes.get(path, ""), child.get("description", "")
        if group:
            if note or described:  # a group is a row of its own only when it says something about its values
                rows.append((code(path), "", "the values below", note or described))
            continue
        rules = allowed(child)
        if note and described:  # the comment says what it is for; the schema's description, what it takes
            rules = f"{rules}. {described}"
        shown = "none" if default is _UNSET else literal(default)
        rows.append((code(path), shown, rules, note or described))
    return page(
        "Helm values",
        "charts/entra-webhook/values.schema.json and values.yaml",
        "Every value of the `charts/entra-webhook` chart: its default (values.yaml), what `values.schema.json` "
        "allows, and what the comment above it in values.yaml says. The schema refuses anything else, and the "
        "templates refuse a few combinations with the field and the fix (for example "
        "`podDisruptionBudget.minAvailable` must stay below `replicaCount`, and an image tagged `latest`), "
        "before anything is created. How to install: [install](../getting-started/install.md).",
        table(("value", "default", "allowed", "meaning"), rows),
    )
