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


def run_serve(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    settings = load_settings(vars(args), os.environ)
    source: ConfigSource = FileSource(args.config)
    admission = Admission(source, settings)
    tls = ReloadingTLS(args.cert_file, args.key_file)
    log.info(
        "serving on https://%s:%d/mutate, image %s, mode %s",
        args.host,
        args.port,
        settings.sidecar_image,
        admission.mode(),
    )
    serve(Lifecycle(admission), tls, args.host, args.port, drain_seconds=args.drain_seconds)
    return 0
