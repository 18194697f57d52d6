"""Settings from flags and environment variables, validated once at start by a pydantic model.

Both processes load theirs this way (each with its own env prefix), so every error names the flag and the
env var alike. A model's field descriptions are its flags' help: `--help`, the README's tables and
docs/reference/settings.md all come from them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from webhook.common.text import QUOTE_LIMIT, clip, quoted


class SettingsError(ValueError):
    pass


_M = TypeVar("_M", bound=BaseModel)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(value: str) -> str:
    if value.upper() not in LOG_LEVELS:
        raise PydanticCustomError(
            "log_level", "must be one of {levels} (any case), got {value}", {"levels": ", ".join(LOG_LEVELS),
                                                                              "value": quoted(value)}
        )  # fmt: skip
    return value.upper()


# Python's logging levels, in any case: `--log-level debug` works, `--log-level verbose` is one line and exit 2.
LogLevel = Annotated[str, AfterValidator(_log_level)]


def setting(default: Any = ..., help: str = "", *, unset: str | None = None, **constraints: Any) -> Any:
    """A model field with its flag's help; `unset` says what a None default means (shown as the default)."""
    extra: dict[str, Any] | None = {"unset": unset} if unset is not None else None
    return Field(default, description=help, json_schema_extra=extra, **constraints)


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def env_name(field: str, prefix: str) -> str:
    return prefix + field.upper()


def _spelled(field: str, prefix: str | None) -> str:
    return f"{flag_name(field)} ({env_name(field, prefix)})" if prefix else flag_name(field)


_ECHOED = {"literal_error", "int_parsing", "float_parsing", "bool_parsing", "greater_than", "greater_than_equal",
           "less_than", "less_than_equal", "url_parsing", "path_type", "string_type"}  # fmt: skip


def load_model(model: type[_M], flags: Mapping[str, Any], environ: Mapping[str, str], prefix: str | None) -> _M:
    """Flags win over env vars (when the model has a `prefix`), env vars over defaults; one line names every
    problem with both spellings of the setting and the value given."""
    values: dict[str, Any] = {}
    for field in model.model_fields:
        given = flags.get(field)
        if given is not None and given != []:
            values[field] = given
        elif prefix and env_name(field, prefix) in environ:
            values[field] = environ[env_name(field, prefix)]
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else ""
            message = item["msg"]
            if item["type"] in _ECHOED:
                shown = item["input"]
                message += f", got {clip(shown, QUOTE_LIMIT)!r}" if isinstance(shown, str) else f", got {shown!r}"
            problems.append(f"{_spelled(field, prefix)}: {message}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@dataclass(frozen=True, slots=True)
class Flag:
    """One flag of one command, as `--help` and the settings reference show it."""

    names: tuple[str, ...]
    help: str
    default: str | None  # None: required
    env: str | None = None

    def render(self) -> str:
        default = "required" if self.default is None else f"default: {self.default}"
        return f"{self.help} ({default}{f'; env {self.env}' if self.env else ''})"


class Flags:
    """A command's flags, added to its parser and recorded, so that help and the docs come from one place."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        self.flags: list[Flag] = []

    def add(
        self,
        *names: str,
        help: str,
        default_text: str | None,
        env: str | None = None,
        group: argparse._ArgumentGroup | None = None,
        **options: Any,
    ) -> None:
        """`default_text` is the default as a user reads it (None: the flag is required)."""
        flag = Flag(names, help, default_text, env)
        action = (group or self.parser).add_argument(*names, help=flag.render(), **options)
        self.flags.append(Flag(tuple(action.option_strings), help, default_text, env))  # --x and --no-x

    def model(
        self,
        model: type[BaseModel],
        prefix: str | None,
        title: str | None = None,
        skip: Sequence[str] = (),
    ) -> None:
        """A flag per field (and its env var with `prefix`): the field's description, default and choices."""
        group = self.parser.add_argument_group(title) if title else None
        for name, field in model.model_fields.items():
            if name in skip:
                continue
            options = _argparse_options(name, field)
            self.add(
                flag_name(name),
                dest=name,
                help=field.description or "",
                default_text=_shown_default(field),
                env=env_name(name, prefix) if prefix else None,
                group=group,
                **options,
            )


def _shown_default(field: FieldInfo) -> str | None:
    if field.is_required():
        return None
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("unset"), str) and field.default is None:
        return str(extra["unset"])
    default = field.default
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, list | tuple):
        return "none" if not default else ", ".join(map(str, default))
    if isinstance(default, Enum):
        return str(default.value)
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return "none" if default is None else str(default)


def _choices(annotation: Any) -> tuple[str, ...] | None:
    annotation = _bare(annotation)
    if get_origin(annotation) is Literal:
        return tuple(str(arg) for arg in get_args(annotation))
    return None


def _bare(annotation: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` as X."""
    while get_origin(annotation) in {Annotated, Union, UnionType}:
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    return annotation


def _is_list(annotation: Any) -> bool:
    return get_origin(_bare(annotation)) in {list, tuple}


def _argparse_options(name: str, field: FieldInfo) -> dict[str, Any]:
    """Booleans as --x/--no-x, lists as repeatable flags; pydantic checks every value (one line, exit 2)."""
    annotation = field.annotation
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction, "default": None}
    choices = _choices(annotation)
    if choices:
        metavar = "{" + ",".join(choices) + "}"
    else:
        metavar = "PATH" if _path_like(annotation) else name.rsplit("_", 1)[-1].upper()
    if _is_list(annotation):
        return {"action": "append", "default": None, "metavar": metavar}
    return {"default": None, "required": field.is_required(), "metavar": metavar}


def _path_like(annotation: Any) -> bool:
    bare = _bare(annotation)
    return bare is Path or (get_origin(bare) in {list, tuple} and get_args(bare)[0] is Path)
