"""`entra-webhook`: `inject` (offline), `serve` (the admission endpoint), `controller` and `certs`."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

import jsonpatch

from webhook import __version__
from webhook.common.errors import UsageError
from webhook.common.models import ObjectRef
from webhook.common.settings import SettingsError, env_name, flag_name
from webhook.core.decision import Deny, Inject, decide
from webhook.core.documents import DocumentError, dump_documents, load_documents
from webhook.core.index import ConfigIndex
from webhook.core.placement import ModeSetting
from webhook.core.settings import ENV_PREFIX, Settings, load_settings, parse_server_version
from webhook.core.workloads import find_templates
from webhook.injector.certs import ca_bundle, make_ca, make_serving, service_names, write_bundle
from webhook.injector.sources.files import FileSource, SourceError, config_objects


def _settings_flags(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    group = parser.add_argument_group("sidecar settings (flags win over ENTRA_WEBHOOK_* env vars)")
    for name, field in Settings.model_fields.items():
        if name in skip:
            continue
        group.add_argument(
            flag_name(name),
            dest=name,
            metavar=name.rsplit("_", 1)[-1].upper(),
            help=f"env {env_name(name, ENV_PREFIX)}; default {field.default}",
        )


def _controller_flags(parser: argparse.ArgumentParser) -> None:
    from webhook.controller.settings import ENV_PREFIX as CONTROLLER_PREFIX
    from webhook.controller.settings import ControllerSettings

    for name, field in ControllerSettings.model_fields.items():
        parser.add_argument(
            flag_name(name),
            dest=name,
            metavar=name.rsplit("_", 1)[-1].upper(),
            help=f"env {env_name(name, CONTROLLER_PREFIX)}; default {field.default}",
        )


def _server_version(text: str) -> tuple[int, int]:
    try:
        return parse_server_version(text)
    except SettingsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _version_flag(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument(
        "--server-version",
        type=_server_version,
        metavar="MAJOR.MINOR",
        help=f"the Kubernetes API server's version, e.g. 1.29 ({default_help}); native sidecars need 1.29+, "
        "and a native request with no known version gets a regular container",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="entra-webhook", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    inject = commands.add_parser("inject", help="inject Pods and Pod templates in Kubernetes YAML, offline")
    inject.add_argument("-f", "--file", required=True, help="a YAML file, or - for stdin")
    inject.add_argument("--config", action="append", type=Path, default=[], help="file or dir of CRs (repeatable)")
    inject.add_argument("--namespace", default="default", help="namespace for objects that name none")
    inject.add_argument("--mode", choices=get_args(ModeSetting), help="sidecar placement")
    _version_flag(inject, "default: unknown")
    _settings_flags(inject, skip=("mode",))

    serve = commands.add_parser("serve", help="serve the admission endpoint over HTTPS")
    serve.add_argument("--cert-file", type=Path, required=True)
    serve.add_argument("--key-file", type=Path, required=True)
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--config", action="append", type=Path, default=[], help="file or dir of CRs (repeatable)")
    serve.add_argument("--kubeconfig", type=Path, help="read CRs from this cluster (default: in-cluster if there)")
    serve.add_argument("--drain-seconds", type=float, default=5.0, help="keep serving after SIGTERM, not ready")
    serve.add_argument("--tls-reload-seconds", type=float, default=5.0, help="how often to look for a new certificate")
    serve.add_argument("--log-level", default="INFO")
    serve.add_argument("--metrics-host", default="0.0.0.0")
    serve.add_argument("--metrics-port", type=int, default=9090, help="plain-HTTP Prometheus metrics; 0 turns off")
    serve.add_argument("--no-events", action="store_true", help="record no Kubernetes Events for skips and denials")
    rotation = serve.add_argument_group("self-managed certificates (needs the cluster API)")
    rotation.add_argument("--manage-certs", action="store_true", help="create and rotate the serving certificate")
    rotation.add_argument("--tls-secret", default="entra-webhook-tls", help="Secret in the webhook's namespace")
    rotation.add_argument("--webhook-configuration", default="entra-webhook", help="whose caBundle to keep current")
    rotation.add_argument("--service", default="entra-webhook", help="Service name for the certificate's DNS names")
    rotation.add_argument("--cert-dns", action="append", default=[], help="extra DNS name (repeatable)")
    rotation.add_argument("--cert-ip", action="append", default=[], help="IP address SAN (repeatable)")
    rotation.add_argument("--cert-validity-hours", type=float, default=90 * 24)
    rotation.add_argument("--ca-validity-hours", type=float, default=3650 * 24)
    rotation.add_argument("--cert-sync-seconds", type=float, default=300.0)
    serve.add_argument("--mode", choices=get_args(ModeSetting), help="sidecar placement")
    _version_flag(serve, "default: read from the cluster API when there is one, else unknown")
    _settings_flags(serve, skip=("mode",))

    controller = commands.add_parser(
        "controller", help="create managed AgentIdentities in Entra (flags win over ENTRA_CONTROLLER_* env vars)"
    )
    _controller_flags(controller)

    certs = commands.add_parser("certs", help="make a CA and a serving certificate")
    certs.add_argument("--out", type=Path, required=True)
    certs.add_argument("--service", default="entra-webhook")
    certs.add_argument("--namespace", default="entra-system")
    certs.add_argument("--dns", action="append", default=[], help="extra DNS name (repeatable)")
    certs.add_argument("--ip", action="append", default=[], help="IP address SAN (repeatable)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "inject":
            return run_inject(args)
        if args.command == "serve":
            from webhook.injector.run import run_serve

            return run_serve(args)
        if args.command == "controller":
            from webhook.controller.run import run_controller

            return run_controller(args)
        return run_certs(args)
    except (UsageError, SettingsError, SourceError, DocumentError, OSError) as error:
        print(f"entra-webhook {args.command}: {error}", file=sys.stderr)
        return 2


def run_inject(args: argparse.Namespace) -> int:
    settings = load_settings(vars(args), os.environ)
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    documents = load_documents(text, args.file)
    index = FileSource(args.config, args.namespace).load() if args.config else ConfigIndex()
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
            outcome = decide(template.pod, namespace, index, settings, args.server_version, subject=subject)
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
        for ref in not_ready:
            print(f"hint: {_offline_hint(ref)}", file=sys.stderr)
        return 1
    sys.stdout.write(dump_documents(output))
    return 0


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
