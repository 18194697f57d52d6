"""`entra-webhook serve`: wire settings, the config source, TLS and the server together."""

from __future__ import annotations

import argparse
import logging
import os

from webhook import logs
from webhook.admission import Admission
from webhook.server import Lifecycle, serve
from webhook.settings import load_settings
from webhook.sources import ConfigSource
from webhook.sources.files import FileSource
from webhook.tls import ReloadingTLS

log = logging.getLogger(__name__)


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def run_serve(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    settings = load_settings(vars(args), os.environ)
    source: ConfigSource
    version: tuple[int, int] | None = None
    if args.kubeconfig or (_in_cluster() and not args.config):
        from kubernetes import config

        from webhook.sources.cluster import ClusterSource, server_version

        if args.kubeconfig:
            api = config.new_client_from_config(config_file=str(args.kubeconfig))
        else:
            config.load_incluster_config()
            from kubernetes import client

            api = client.ApiClient()
        source = ClusterSource(api)
        try:
            version = server_version(api)
        except Exception as error:
            log.warning("could not read the API server version (%s): auto mode uses regular containers", error)
    else:
        source = FileSource(args.config)
    admission = Admission(source, settings, version)
    tls = ReloadingTLS(args.cert_file, args.key_file, interval=args.tls_reload_seconds)
    log.info(
        "serving",
        extra={
            "url": f"https://{args.host}:{args.port}/mutate",
            "config": "cluster" if version is not None or args.kubeconfig else "files",
            "server_version": ".".join(map(str, version)) if version else None,
            "image": settings.sidecar_image,
            "mode": admission.mode(),
        },
    )
    serve(Lifecycle(admission), tls, args.host, args.port, drain_seconds=args.drain_seconds)
    return 0
