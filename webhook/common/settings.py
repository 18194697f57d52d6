"""Settings from flags and environment variables, validated once at start by a pydantic model.

Both processes load theirs this way (each with its own env prefix), so every error names the flag and the
env var alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError


class SettingsError(ValueError):
    pass


_M = TypeVar("_M", bound=BaseModel)


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def env_name(field: str, prefix: str) -> str:
    return prefix + field.upper()


def load_model(model: type[_M], flags: Mapping[str, Any], environ: Mapping[str, str], prefix: str) -> _M:
    """Flags win over env vars, env vars over defaults; errors name both spellings of the setting."""
    values: dict[str, Any] = {}
    for field in model.model_fields:
        if flags.get(field) is not None:
            values[field] = flags[field]
        elif env_name(field, prefix) in environ:
            values[field] = environ[env_name(field, prefix)]
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else ""
            problems.append(f"{flag_name(field)} ({env_name(field, prefix)}): {item['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
