"""docs/reference/cli.md: every command and flag, read from the argument parser the CLI runs (`webhook.cli`),
and every environment variable, from the settings models the flags fall back to.

argparse has no public way to list a parser's commands and options; the attributes read here
(`_actions`, `_action_groups`, `_choices_actions`) are the ones its own help formatter reads, the same since
Python 3.2, so a command or flag added to the parser shows up here with nothing else to change.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from pydantic import BaseModel

from scripts.reference.markdown import code, fenced, literal, page, table
from webhook.cli import _parser
from webhook.common.settings import env_name, flag_name
from webhook.controller.settings import ENV_PREFIX as CONTROLLER_PREFIX
from webhook.controller.settings import ControllerSettings
from webhook.core.settings import ENV_PREFIX, Settings

# Which commands read which settings model (their flags win over these variables).
ENVIRONMENT: tuple[tuple[type[BaseModel], str, str], ...] = (
    (Settings, ENV_PREFIX, "inject, serve"),
    (ControllerSettings, CONTROLLER_PREFIX, "controller"),
)


WIDTH = 100  # usage lines wrapped at a fixed width, not the terminal's (COLUMNS), so the page is the same anywhere


def usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order `--help` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def options(parser: argparse.ArgumentParser) -> Iterator[tuple[str, list[argparse.Action]]]:
    """The parser's options by group (title, actions), `--help` and subcommands left out."""
    for group in parser._action_groups:
        actions = [
            action
            for action in group._group_actions
            if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        ]
        if actions:
            yield group.title or "options", actions


def row(parser: argparse.ArgumentParser, action: argparse.Action) -> tuple[str, str, str, str]:
    names = ", ".join(code(name) for name in action.option_strings) or code(action.dest)
    if action.nargs == 0:
        value = ""
    elif action.choices is not None:
        value = " or ".join(code(str(choice)) for choice in action.choices)
    else:
        value = code(str(action.metavar or action.dest.upper()))
    if action.required:
        value += " (required)"
    if isinstance(action, argparse._AppendAction):
        value += " (repeatable)"
    default = action.default
    shown = "" if default in (None, [], False, argparse.SUPPRESS) else literal(_plain(default))
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH)
    return names, value.strip(), shown, formatter._expand_help(action) if action.help else ""


def _plain(value: object) -> object:
    return value if isinstance(value, str | int | float | bool) else str(value)


def environment() -> str:
    rows = []
    for model, prefix, used_by in ENVIRONMENT:
        for name, field in model.model_fields.items():
            default = "none" if field.default is None else literal(_plain(field.default))
            rows.append(
                (code(env_name(name, prefix)), code(flag_name(name)), used_by, default, field.description or "")
            )
    return table(("variable", "flag", "commands", "default", "meaning"), rows)


def render() -> str:
    parser = _parser()
    sections = [
        "## `entra-webhook`",
        fenced(usage(parser)),
        *(_options(parser, level="###")),
    ]
    for name, summary, sub in commands(parser):
        sections += [f"## `entra-webhook {name}`", summary + ".", fenced(usage(sub))]
        sections += _options(sub, level="###")
    sections += [
        "## Environment variables",
        "The sidecar settings of `inject` and `serve`, and every setting of `controller`, may come from the "
        "environment instead of a flag; a flag wins over its variable, and both are validated once at start "
        "(an error names the flag and the variable alike).",
        environment(),
    ]
    return page(
        "Command line",
        "the argument parser in webhook/cli.py and the settings models",
        "One program, `entra-webhook`, with one command per job: `inject` (offline), `serve` (the admission "
        "webhook), `controller` (the provisioning controller) and `certs`. The image's entrypoint is "
        "`entra-webhook`; the chart passes `serve ...` and `controller ...`.",
        *sections,
    )


def _options(parser: argparse.ArgumentParser, level: str) -> list[str]:
    sections = []
    for title, actions in options(parser):
        heading = title[0].upper() + title[1:]
        rows = (row(parser, action) for action in actions)
        sections += [f"{level} {heading}", table(("flag", "value", "default", "meaning"), rows)]
    return sections
