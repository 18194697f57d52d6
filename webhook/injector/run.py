"""`entra-webhook serve`: wire settings, the config source, observers, TLS and the server together."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from webhook import __version__
from webhook.common import logs
from webhook.common.errors import UsageError
from webhook.common.kubeapi import api_client
from webhook.core.inject import native_fallback
from webhook.core.settings import Settings, load_settings
from webhook.injector.admission import Admission, Observer
from webhook.injector.admission_log import AdmissionLog
from webhook.injector.certs import service_names
from webhook.injector.metrics import Metrics
from webhook.injector.options import ServeOptions, load_serve_options
from webhook.injector.server import Lifecycle, serve
from webhook.injector.sources import ConfigSource
from webhook.injector.sources.files import FileSource
from webhook.injector.tls import ReloadingTLS

log = logging.getLogger(__name__)


def _read_server_version(api: Any | None) -> tuple[int, int] | None:
    """From the cluster API when there is one (with --config too); None when unknown."""
    if api is None:
        return None
    from webhook.injector.sources.cluster import server_version

    try:
        return server_version(api)
    except Exception as error:
        log.warning("could not read the API server version (%s): pass --server-version to declare it", error)
        return None


def run_serve(args: argparse.Namespace) -> int:
    options = load_serve_options(vars(args))
    settings = load_settings(vars(args), os.environ)
    logs.configure(options.log_level)
    api = api_client(
        options.kubeconfig, "pass a working kubeconfig, or --config PATH to read blueprints and identities from files"
    )
    if options.manage_certs and api is None:
        raise UsageError("--manage-certs needs the cluster API: run in a cluster or pass --kubeconfig")
    if api is None and not options.config:
        raise UsageError(
            "no AgentBlueprints or AgentIdentities to serve: pass --config PATH (files or directories of them), "
            "--kubeconfig PATH (read them from that cluster), or run it in a cluster"
        )

    source: ConfigSource
    metrics = Metrics(lambda: source.index)
    if api is not None and not options.config:
        from webhook.injector.sources.cluster import ClusterSource

        source = ClusterSource(api, on_watch_restart=metrics.watch_restarted)
    else:
        source = FileSource(options.config)
    version = args.server_version or _read_server_version(api)

    shutdown: list[Callable[[], None]] = []
    admission_log = AdmissionLog()
    observers: list[Observer] = [admission_log, metrics.observe]
    shutdown.append(admission_log.flush)  # what the last loop iteration left
    if api is not None and options.events:
        from webhook.injector.events import EventRecorder

        recorder = EventRecorder.for_cluster(api, on_result=metrics.event_result)
        recorder.start()
        observers.append(recorder.observe)
        shutdown.append(recorder.stop)  # send what is queued before exiting
    if options.manage_certs:
        _start_rotation(api, options, settings)

    admission = Admission(source, settings, version, observers)
    if settings.mode == "native" and admission.mode() != "native":
        log.warning("--mode native: %s", native_fallback(version))
    try:
        tls = ReloadingTLS(
            options.cert_file,
            options.key_file,
            interval=options.tls_reload_seconds,
            on_reload=metrics.certificate_loaded,
        )
    except (OSError, ssl.SSLError) as error:
        raise UsageError(
            f"cannot load the serving certificate --cert-file {options.cert_file} --key-file {options.key_file}: "
            f"{error} (make a pair with `entra-webhook certs --out DIR`)"
        ) from None
    if options.metrics_port:
        try:
            metrics.serve(options.metrics_host, options.metrics_port)
        except OSError as error:
            raise UsageError(
                f"cannot serve metrics on {options.metrics_host}:{options.metrics_port} ({error}): "
                "choose another --metrics-port, or 0 to turn metrics off"
            ) from None
    log.info(
        "serving",
        extra={
            "url": f"https://{options.host}:{options.port}/mutate",
            "version": __version__,
            "config": type(source).__name__,
            "server_version": ".".join(map(str, version)) if version else None,
            "image": settings.sidecar_image,
            "mode": admission.mode(),
            "metrics": f"http://{options.metrics_host}:{options.metrics_port}/metrics"
            if options.metrics_port
            else None,
        },
    )
    lifecycle = Lifecycle(admission, shutdown=shutdown)
    serve(lifecycle, tls, options.host, options.port, drain_seconds=options.drain_seconds)
    return 0


def _start_rotation(api: Any, options: ServeOptions, settings: Settings) -> None:
    """First sync before serving (TLS needs the files), then a background loop."""
    from webhook.injector.rotation import CertificateRotator, CertificateStore, Lifetimes

    store = CertificateStore(api, settings.own_namespace, options.tls_secret, options.webhook_configuration)
    rotator = CertificateRotator(
        store,
        [*service_names(options.service, settings.own_namespace), *options.cert_dns],
        options.cert_ip,
        options.cert_file,
        options.key_file,
        Lifetimes(
            ca=dt.timedelta(hours=options.ca_validity_hours), serving=dt.timedelta(hours=options.cert_validity_hours)
        ),
    )
    delay = 1.0
    while True:
        try:
            rotator.sync()
            break
        except Exception as error:
            log.warning("certificate setup failed (%s); retrying in %.0fs", error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30)
    stop = threading.Event()
    threading.Thread(target=rotator.run, args=(stop, options.cert_sync_seconds), name="certs", daemon=True).start()
