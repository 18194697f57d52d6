"""`entra-webhook`: `inject` (offline), `serve` (the admission endpoint), `controller`, `check`, `entra-commands`
and `certs`."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import jsonpatch

from webhook import __version__
from webhook.common.errors import UsageError
from webhook.common.kubeapi import api_client, api_errors, describe_api_error, list_objects
from webhook.common.models import INSTALL_CRDS, ObjectRef
from webhook.common.settings import Flags, SettingsError
from webhook.controller.settings import ENV_PREFIX as CONTROLLER_PREFIX
from webhook.controller.settings import ControllerSettings
from webhook.core.decision import Deny, Inject, decide
from webhook.core.documents import DocumentError, dump_documents, load_documents
from webhook.core.index import ConfigIndex
from webhook.core.settings import ENV_PREFIX, Settings, load_settings, parse_server_version
from webhook.core.workloads import find_templates
from webhook.injector.certs import ca_bundle, make_ca, make_serving, service_names, write_bundle
from webhook.injector.options import ServeOptions
from webhook.injector.sources.files import FileSource, SourceError, config_objects
from webhook.ops.check import check_flags, run_check
from webhook.ops.entra import entra_flags, run_entra_commands


def _server_version(text: str) -> tuple[int, int]:
    try:
        return parse_server_version(text)
    except SettingsError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--server-version ")) from None


def _version_flag(flags: Flags, default_text: str) -> None:
    flags.add(
        "--server-version",
        type=_server_version,
        metavar="MAJOR.MINOR",
        help="the Kubernetes API server's version, e.g. 1.29: native sidecars need 1.29+, and a native request "
        "with no known version gets a regular container",
        default_text=default_text,
    )


def _sidecar_flags(flags: Flags) -> None:
    flags.model(Settings, ENV_PREFIX, "sidecar settings (flags win over ENTRA_WEBHOOK_* env vars)")


def _config_flag(flags: Flags, help: str) -> None:
    flags.add("--config", action="append", type=Path, default=[], metavar="PATH", help=help, default_text="none")


class _Parser(argparse.ArgumentParser):
    """A bad flag or value ends in one line naming it, and exit status 2 (not the whole usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Flags]]:
    """The parser, and each command's flags as `--help` and docs/reference/settings.md show them."""
    parser = _Parser(prog="entra-webhook", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    flags: dict[str, Flags] = {}

    def command(name: str, help: str) -> Flags:
        flags[name] = Flags(commands.add_parser(name, help=help, description=help))
        return flags[name]

    inject = command("inject", "inject Pods and Pod templates in Kubernetes YAML, offline or from a cluster's config")
    inject.add("-f", "--file", required=True, metavar="FILE", help="a YAML file, or - for stdin", default_text=None)
    _config_flag(inject, "file or directory of AgentBlueprints and AgentIdentities (repeatable)")
    inject.add(
        "--kubeconfig",
        type=Path,
        metavar="PATH",
        help="read AgentBlueprints and AgentIdentities from this cluster (with --config: files win)",
        default_text="none: only --config and the file itself",
    )
    inject.add(
        "--namespace",
        metavar="NAME",
        default="default",
        help="namespace of objects that name none",
        default_text="default",
    )
    _version_flag(inject, "unknown (with --kubeconfig: the cluster's)")
    _sidecar_flags(inject)

    serve = command("serve", "serve the admission endpoint over HTTPS")
    serve.model(ServeOptions, None)
    _version_flag(serve, "read from the cluster API when there is one, else unknown")
    _sidecar_flags(serve)

    controller = command(
        "controller", "create managed AgentIdentities in Entra (flags win over ENTRA_CONTROLLER_* env vars)"
    )
    controller.model(ControllerSettings, CONTROLLER_PREFIX)

    check_flags(
        command("check", "check an install from a kubeconfig, and what happens to a namespace's or a file's Pods")
    )
    entra_flags(
        command("entra-commands", "print the az rest commands an Entra admin runs for the cluster's blueprints")
    )

    certs = command("certs", "make a CA and a serving certificate (ca.crt, ca.key, tls.crt, tls.key)")
    certs.add("--out", type=Path, required=True, metavar="DIR", help="directory to write the four files to",
              default_text=None)  # fmt: skip
    certs.add("--service", default="entra-webhook", metavar="NAME", help="the webhook's Service (DNS names)",
              default_text="entra-webhook")  # fmt: skip
    certs.add("--namespace", default="entra-system", metavar="NAME", help="the Service's namespace",
              default_text="entra-system")  # fmt: skip
    certs.add("--dns", action="append", default=[], metavar="NAME", help="another DNS name (repeatable)",
              default_text="none")  # fmt: skip
    certs.add("--ip", action="append", default=[], metavar="ADDRESS", help="an IP address (repeatable)",
              default_text="none")  # fmt: skip
    return parser, flags


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser()[0].parse_args(argv)
    try:
        if args.command == "inject":
            return run_inject(args)
        if args.command == "serve":
            from webhook.injector.run import run_serve

            return run_serve(args)
        if args.command == "controller":
            from webhook.controller.run import run_controller

            return run_controller(args)
        if args.command == "check":
            return run_check(args)
        if args.command == "entra-commands":
            return run_entra_commands(args)
        return run_certs(args)
    except (UsageError, SettingsError, SourceError, DocumentError, OSError) as error:
        print(f"entra-webhook {args.command}: {error}", file=sys.stderr)
        return 2


def run_inject(args: argparse.Namespace) -> int:
    settings = load_settings(vars(args), os.environ)
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    documents = load_documents(text, args.file)
    index = ConfigIndex()
    server_version = args.server_version
    if args.kubeconfig:
        index, found_version = _cluster_config(args.kubeconfig)
        server_version = server_version or found_version
    for obj in FileSource(args.config, args.namespace).load().objects() if args.config else []:
        index = index.with_object(obj)  # files win over the cluster
    for obj in config_objects(documents, args.file, args.namespace):
        index = index.with_object(obj)

    output: list[Any] = []
    denials: list[str] = []
    not_ready: dict[ObjectRef, None] = {}
    for original in documents:
        document = original
        for template in find_templates(original):
            namespace = template.namespace or args.namespace
            subject = None if template.kind == "Pod" else f'{template.subject} in namespace "{namespace}"'
            outcome = decide(template.pod, namespace, index, settings, server_version, subject=subject)
            for warning in outcome.warnings if not isinstance(outcome, Deny) else []:
                print(f"warning: {warning}", file=sys.stderr)
            if isinstance(outcome, Deny):
                denials.append(outcome.message)
                if outcome.not_ready is not None:
                    not_ready[outcome.not_ready] = None
            elif isinstance(outcome, Inject):
                document = _replace(document, template.path, jsonpatch.apply_patch(template.pod, outcome.ops))
        output.append(document)
    if denials:
        for message in denials:
            print(f"denied: {message}", file=sys.stderr)
        for ref in not_ready if not args.kubeconfig else []:
            print(f"hint: {_offline_hint(ref)}", file=sys.stderr)
        return 1
    sys.stdout.write(dump_documents(output))
    return 0


def _cluster_config(kubeconfig: Path) -> tuple[ConfigIndex, tuple[int, int] | None]:
    """The cluster's AgentBlueprints and AgentIdentities as they are now, and its version, as the webhook sees them."""
    from webhook.injector.sources.cluster import server_version

    api = api_client(kubeconfig, "pass a working kubeconfig, or --config PATH to read them from files")
    try:
        return ConfigIndex.of(list_objects(api)), server_version(api)
    except api_errors() as error:
        hint = f" (are the CRDs installed? {INSTALL_CRDS})" if "404" in str(error)[:4] else ""
        raise UsageError(
            f"cannot list AgentBlueprints and AgentIdentities with --kubeconfig {kubeconfig}: "
            f"{describe_api_error(error)}{hint}"
        ) from None


def _offline_hint(ref: ObjectRef) -> str:
    """Offline, the status is what the files say: how to give inject the one the controller wrote."""
    get = f"kubectl get agentidentity {ref.name} -n {ref.namespace}"
    return (
        f"offline, inject knows only the status its --config files hold. Once `{get}` shows READY True, "
        f"export it and pass it after the others: {get} -o yaml > {ref.name}.yaml, then add "
        f"--config {ref.name}.yaml (or give an existing identity's id as spec.clientId)"
    )


def _replace(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """A copy of `document` with the node at `path` replaced; the input stays as it was."""
    if not path:
        return value
    result = copy.copy(document)
    result[path[0]] = _replace(document[path[0]], path[1:], value)
    return result


def run_certs(args: argparse.Namespace) -> int:
    ca = make_ca()
    serving = make_serving(ca, [*service_names(args.service, args.namespace), *args.dns], args.ip)
    write_bundle(args.out, ca, serving)
    print(f"wrote ca.crt, ca.key, tls.crt and tls.key to {args.out}", file=sys.stderr)
    print(ca_bundle(ca.cert_pem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
