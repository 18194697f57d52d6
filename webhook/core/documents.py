"""Multi-document Kubernetes YAML (or JSON) in and out, with errors that name the file and line."""

from __future__ import annotations

from typing import Any

import yaml

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc,valid-type]
    """Our own subclass, so the string style below does not leak into other users of PyYAML."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line strings (scripts in `args`) as literal blocks, the way people write them."""
    style = "|" if "\n" in value and not value.endswith((" ", "\t")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


class DocumentError(ValueError):
    pass


def load_documents(text: str, source: str) -> list[Any]:
    """Every non-empty document in `text`; `source` names it in errors (a path, or `-` for stdin)."""
    try:
        return [document for document in yaml.load_all(text, Loader=_Loader) if document is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = getattr(error, "problem", None) or str(error)
        raise DocumentError(f"{where}: not valid YAML: {problem}") from None


def dump_documents(documents: list[Any]) -> str:
    """YAML in the documents' own key order, one `---` between documents, no line wrapping."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=2**31 - 1)
