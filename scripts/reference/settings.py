"""docs/reference/settings.md: every command, its usage and every flag with its env var, default and meaning.

Each flag's help, default and env var come from where the flag is defined (the settings models' field
descriptions, or the command's own flags in webhook/cli.py, recorded by `Flags`): the page says what
`entra-webhook COMMAND --help` prints, and tests/test_flags.py compares the two row by row.

argparse has no public way to list a parser's commands or print a usage line at a fixed width; the attributes
read here (`_actions`, `_choices_actions`, `_mutually_exclusive_groups`) are the ones its own help formatter
reads, the same since Python 3.2.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from scripts.reference.markdown import code, fenced, page, table
from webhook.cli import build_parser
from webhook.common.settings import Flag, Flags

WIDTH = 100  # usage lines wrapped at a fixed width, not the terminal's (COLUMNS), so the page is the same anywhere
SIDECAR = "Sidecar settings"  # the settings `serve` and `inject` share, as one table of their own
SHARED_BY = ("inject", "serve")


def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each command, in the order `--help` lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _default(flag: Flag) -> str:
    """A value as code; words (none, on, off) and explanations as they are."""
    if flag.default is None:
        return "required"
    if " " in flag.default or flag.default in {"none", "on", "off"}:
        return flag.default
    return code(flag.default)


def flag_table(flags: list[Flag]) -> str:
    rows = (
        (", ".join(code(name) for name in flag.names), code(flag.env) if flag.env else "", _default(flag), flag.help)
        for flag in flags
    )
    return table(("flag", "env", "default", "meaning"), rows)


def _shared(command: str, flag: Flag) -> bool:
    """A sidecar setting: a flag of `serve` or `inject` that an ENTRA_WEBHOOK_* variable may set instead."""
    return command in SHARED_BY and flag.env is not None


def sections(parser: argparse.ArgumentParser, flags: dict[str, Flags]) -> Iterator[str]:
    yield "## `entra-webhook`"
    yield fenced(usage(parser))
    yield table(("command", "what it does"), ((f"[{code(name)}](#entra-webhook-{name})", summary)
                                              for name, summary, _ in commands(parser)))  # fmt: skip
    yield "`--version` prints the version; `COMMAND --help` prints what this page says about the command."
    for name, summary, sub in commands(parser):
        yield f"## `entra-webhook {name}`"
        yield summary[0].upper() + summary[1:] + "."
        yield fenced(usage(sub))
        yield flag_table([flag for flag in flags[name].flags if not _shared(name, flag)])
        if name in SHARED_BY:
            yield "And the [sidecar settings](#sidecar-settings), shared by `inject` and `serve`."
    shared = [flag for flag in flags[SHARED_BY[0]].flags if _shared(SHARED_BY[0], flag)]
    yield f"## {SIDECAR}"
    yield (
        "What every injected sidecar gets, and where it goes: flags of `serve` and `inject`, or `ENTRA_WEBHOOK_*` "
        "env vars (the chart sets them from its `sidecar.*` values)."
    )
    yield flag_table(shared)


def render() -> str:
    parser, flags = build_parser()
    return page(
        "Command line and settings",
        "the flags' own definitions (webhook/cli.py and the settings models)",
        "One program, `entra-webhook`, with one command per job. The image's entrypoint is `entra-webhook`; the "
        "chart passes `serve ...` and `controller ...`. Flags win over env vars; every value is checked at start, "
        "and a bad one ends the command with one line naming the flag, the env var and the value, and exit "
        "status 2.",
        *sections(parser, flags),
    )
