"""Every flag of every command: its help and default, its docs, and what a bad value does."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

import webhook
from scripts import render_docs
from scripts.reference import settings as settings_page
from webhook.cli import build_parser, main

COMMANDS = ["serve", "inject", "controller", "certs", "check", "entra-commands"]


REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "settings.md"


def subparsers() -> dict[str, argparse.ArgumentParser]:
    return {name: sub for name, _, sub in settings_page.commands(build_parser()[0])}


def help_of(command: str) -> str:
    parser = subparsers()[command]
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=10_000)  # one line per flag
    return parser.format_help()


def test_every_command_is_documented() -> None:
    assert sorted(subparsers()) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_has_help_and_says_its_default(command: str) -> None:
    text = help_of(command)
    flags = build_parser()[1][command].flags
    recorded = {name for flag in flags for name in flag.names}
    assert [flag.names for flag in flags if not flag.help.strip()] == []  # a model field needs a description
    for action in subparsers()[command]._actions:
        if action.dest == "help":
            continue
        assert set(action.option_strings) <= recorded, f"{action.option_strings} bypassed the recorded flags"
        assert action.help, action.option_strings
        assert re.search(r"\((default: [^)]+|required)", action.help), action.help
    assert "default: None" not in text
    assert "default None" not in text


@pytest.mark.parametrize("command", COMMANDS)
def test_help_and_the_settings_reference_list_the_same_flags(command: str) -> None:
    text = help_of(command)
    in_help = set(re.findall(r"^\s+(--[a-z-]+)", text, re.MULTILINE)) - {"--help"}
    reference = REFERENCE.read_text()
    section = reference.split(f"## `entra-webhook {command}`", 1)[1].split("\n## ", 1)[0]
    sidecar = reference.split("## Sidecar settings", 1)[1]
    documented = set(re.findall(r"`(--[a-z-]+)`", section + (sidecar if command in {"serve", "inject"} else "")))
    assert in_help <= documented
    for flag in build_parser()[1][command].flags:
        assert flag.help in reference


def test_the_settings_reference_is_what_the_flags_say() -> None:
    assert REFERENCE.read_text() == render_docs.PAGES["reference/settings.md"](), "run `make docs` and commit it"


def reference_rows(command: str) -> dict[str, str]:
    """Flag names -> default, from the command's section of the settings reference and the sidecar settings."""
    reference = REFERENCE.read_text()
    sections = [reference.split(f"## `entra-webhook {command}`\n", 1)[1].split("\n## ", 1)[0]]
    if command in settings_page.SHARED_BY:
        sections.append(reference.split(f"## {settings_page.SIDECAR}\n", 1)[1].split("\n## ", 1)[0])
    cells = [row.split("|") for section in sections for row in section.splitlines() if row[:3] == "| `"]
    return {cell[1].strip(): cell[3].strip() for cell in cells}


@pytest.mark.parametrize("command", COMMANDS)
def test_the_settings_reference_matches_help_row_by_row(command: str) -> None:
    rows = reference_rows(command)
    text = help_of(command)
    flags = build_parser()[1][command].flags
    assert len(rows) == len(flags)
    for flag in flags:
        names = ", ".join(f"`{name}`" for name in flag.names)
        assert names in rows
        default = "required" if flag.default is None else flag.default
        assert default == rows[names].strip("`")
        assert flag.render() in text


BAD_VALUES = [
    ("serve", ["--log-level", "verbose"], "--log-level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ("serve", ["--port", "99999"], "--port: Input should be less than or equal to 65535, got '99999'"),
    ("serve", ["--port", "https"], "--port: Input should be a valid integer, unable to parse string as an integer"),
    ("serve", ["--drain-seconds", "-1"], "--drain-seconds: Input should be greater than or equal to 0"),
    ("serve", ["--metrics-port", "-5"], "--metrics-port: Input should be greater than or equal to 0"),
    ("serve", ["--cert-validity-hours", "soon"], "--cert-validity-hours: Input should be a valid number"),
    ("serve", ["--mode", "sidecar"], "--mode (ENTRA_WEBHOOK_MODE): Input should be 'auto', 'native' or 'container'"),
    ("serve", ["--sidecar-port", "80"], "--sidecar-port (ENTRA_WEBHOOK_SIDECAR_PORT): Input should be greater"),
    ("inject", ["--sidecar-memory-limit", "lots"], "--sidecar-memory-limit (ENTRA_WEBHOOK_SIDECAR_MEMORY_LIMIT)"),
    ("inject", ["--run-as-user", "0"], "--run-as-user (ENTRA_WEBHOOK_RUN_AS_USER): Input should be greater"),
    ("controller", ["--log-level", "verbose"], "--log-level (ENTRA_CONTROLLER_LOG_LEVEL): must be one of DEBUG"),
    ("controller", ["--graph-url", "http://graph"], "--graph-url (ENTRA_CONTROLLER_GRAPH_URL): must be an absolute"),
    ("controller", ["--workers", "17"], "--workers (ENTRA_CONTROLLER_WORKERS): Input should be less than or equal"),
    ("controller", ["--lease-seconds", "0"], "--lease-seconds (ENTRA_CONTROLLER_LEASE_SECONDS): Input should be"),
    ("controller", ["--cluster-name", "Prod_1"], "--cluster-name (ENTRA_CONTROLLER_CLUSTER_NAME): must be a DNS"),
]


@pytest.mark.parametrize(("command", "flags", "message"), BAD_VALUES)
def test_a_bad_value_ends_in_one_line_naming_it_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, flags: list[str], message: str
) -> None:
    required = {
        "serve": ["--cert-file", "x", "--key-file", "y", "--config", str(tmp_path)],
        "inject": ["-f", str(tmp_path / "pod.yaml")],
    }.get(command, [])
    code = main([command, *required, *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"entra-webhook {command}: invalid settings: ")
    assert message in err


def test_a_bad_env_var_is_named_with_its_flag(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTRA_CONTROLLER_METRICS_PORT", "ninety")
    assert main(["controller"]) == 2
    assert capsys.readouterr().err == (
        "entra-webhook controller: invalid settings: --metrics-port (ENTRA_CONTROLLER_METRICS_PORT): Input should be "
        "a valid integer, unable to parse string as an integer, got 'ninety'\n"
    )


def test_log_levels_are_taken_in_any_case(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["serve", "--cert-file", str(tmp_path / "x"), "--key-file", "y", "--log-level", "debug",
                 "--config", str(tmp_path), "--metrics-port", "0"])  # fmt: skip
    assert code == 2  # the missing certificate, past the settings
    assert "cannot load the serving certificate" in capsys.readouterr().err


def test_serve_with_no_config_source_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["serve", "--cert-file", "tls.crt", "--key-file", "tls.key"]) == 2
    assert capsys.readouterr().err == (
        "entra-webhook serve: no AgentBlueprints or AgentIdentities to serve: pass --config PATH (files or "
        "directories of them), --kubeconfig PATH (read them from that cluster), or run it in a cluster\n"
    )


def test_version_prints_the_package_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "webhook.cli", "--version"], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, f"entra-webhook {webhook.__version__}\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--server-version", "latest"], "entra-webhook serve: argument --server-version: wants MAJOR.MINOR"),
        (["check", "--timeout", "soon"], "entra-webhook check: argument --timeout: invalid float value: 'soon'"),
        (["entra-commands", "--directory-permission", "All"], "argument --directory-permission: invalid choice"),
        (["inject"], "entra-webhook inject: the following arguments are required: -f/--file"),
        (["serve", "--cert-file", "x", "--key-file", "y", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_a_bad_flag_ends_in_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1, err
    assert message in err
    assert err.rstrip().endswith("--help)")
