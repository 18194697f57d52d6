"""docs/reference/custom-resources.md: the two CRDs field by field, from charts/entra-webhook/crds/*.yaml."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from scripts.reference.markdown import code, literal, page, prose, table

Schema = Mapping[str, Any]

# Patterns worth a name: a reader wants "a GUID", not the regular expression that says so.
PATTERNS = {
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$": "a GUID",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$": "a Kubernetes object name",
    r"[^\t\n\v\f\r \x{1c}-\x{1f}\x{85}\p{Z}]": "not blank",
    "^[Hh][Tt][Tt][Pp][Ss]://[^/?#]": "an absolute https URL",
    "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]": "an absolute http or https URL",
}
STANDARD = ("apiVersion", "kind", "metadata")  # every object has them: not ours to document


def definitions(chart: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in sorted((chart / "crds").glob("*.yaml"))]


def fields(schema: Schema, path: str = "") -> Iterator[tuple[str, Schema, bool]]:
    """(path, schema, required) for every field under `schema`, parents before their children.

    List items are `field[]`, map values `field.NAME`."""
    required = set(schema.get("required", ()))
    for name, child in schema.get("properties", {}).items():
        if not path and name in STANDARD:
            continue
        here = f"{path}.{name}" if path else name
        yield here, child, name in required
        yield from _inside(child, here)


def _inside(schema: Schema, path: str) -> Iterator[tuple[str, Schema, bool]]:
    yield from fields(schema, path)
    items = schema.get("items")
    if isinstance(items, dict):
        yield path + "[]", items, False
        yield from _inside(items, path + "[]")
    values = schema.get("additionalProperties")
    if isinstance(values, dict):
        yield path + ".NAME", values, False
        yield from _inside(values, path + ".NAME")


def kind_of(schema: Schema) -> str:
    kind = str(schema.get("type", "any"))
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {kind_of(schema['items'])}s"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of " + kind_of(schema["additionalProperties"]) + "s by name"
    return kind


CEL_SINCE = "from Kubernetes 1.25:"  # CEL validation rules (x-kubernetes-validations); older servers drop them


def rules(schema: Schema) -> str:
    """What the API server checks beyond the type, in words."""
    said = []
    if "enum" in schema:
        said.append("one of " + ", ".join(code(str(value)) for value in schema["enum"]))
    if "pattern" in schema:
        said.append(PATTERNS.get(schema["pattern"], "matches " + code(schema["pattern"])))
    for low, high, unit in (("minimum", "maximum", ""), ("minLength", "maxLength", " characters")):
        if low in schema or high in schema:
            said.append(bounds(schema.get(low), schema.get(high), unit))
    if "minItems" in schema or "maxItems" in schema:
        said.append(bounds(schema.get("minItems"), schema.get("maxItems"), " items"))
    if "format" in schema:
        said.append(code(schema["format"]))
    if "default" in schema:
        said.append("default " + literal(schema["default"]))
    for word, combine in (("exactly one of", "oneOf"), ("at least one of", "anyOf")):
        if combine in schema:
            options = [" and ".join(code(name) for name in option.get("required", ())) for option in schema[combine]]
            said.append(f"{word}: " + "; or ".join(options))
    for rule in schema.get("x-kubernetes-validations", ()):
        said.append(f"{CEL_SINCE} {code(rule['rule'])}, else: {rule['message']}")
    return "; ".join(said)


def bounds(low: object, high: object, unit: str) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}{unit}"
    return f"at least {low}{unit}" if low is not None else f"at most {high}{unit}"


def columns(version: Schema) -> str:
    rows = [
        (column["name"], code(column["jsonPath"]), "with `-o wide`" if column.get("priority") else "always")
        for column in version.get("additionalPrinterColumns", ())
    ]
    return table(("column", "from", "shown"), rows) if rows else ""


def section(crd: Mapping[str, Any]) -> str:
    spec, names = crd["spec"], crd["spec"]["names"]
    parts = []
    for version in spec["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        rows = [
            (code(path), kind_of(child), "yes" if required else "", rules(child), child.get("description", ""))
            for path, child, required in fields(schema)
        ]
        api = f"{spec['group']}/{version['name']}"
        parts += [
            f"## {names['kind']}",
            f"`apiVersion: {api}`, {spec['scope'].lower()}; `kubectl get {names['plural']}`"
            + "".join(f", `{short}`" for short in names.get("shortNames", ()))
            + "".join(f", `kubectl get {category}`" for category in names.get("categories", ()))
            + (", with a status subresource." if "status" in version.get("subresources", {}) else "."),
            prose(schema.get("description", "")),
            "### Fields",
            table(("field", "type", "required", "rules", "meaning"), rows),
            "### Columns of `kubectl get`",
            columns(version),
        ]
    return "\n\n".join(parts)


def render(chart: Path) -> str:
    crds = definitions(chart)
    return page(
        "Custom resources",
        "charts/entra-webhook/crds/*.yaml",
        "The webhook and `entra-webhook inject` read these two resources; the controller writes their status. "
        "Every rule in the *rules* column is checked by the API server when the object is applied. Those marked "
        f"*{CEL_SINCE}* are CEL validation rules, refused with the message shown; an older API server drops "
        "them and accepts such an object, and the webhook then denies the Pods that name it with the same words "
        "(`invalid-config`, [admission reasons](reasons.md#invalid-config)), as `entra-webhook check` reports it. "
        "How the two fit together: [blueprints and agent identities](../concepts/identities.md).",
        *(section(crd) for crd in sorted(crds, key=lambda crd: str(crd["spec"]["names"]["kind"]))),
    )
