"""`entra-webhook controller`: wire settings, the API, Graph and tokens; lead, then reconcile."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import socket
import ssl
import threading
import uuid
from pathlib import Path
from types import FrameType

from webhook import logs
from webhook.controller.graph import Graph, Retrying
from webhook.controller.kube import Kube
from webhook.controller.leader import Elector
from webhook.controller.loop import Controller
from webhook.controller.provision import Provisioner
from webhook.controller.settings import ControllerSettings, load_controller_settings
from webhook.controller.tokens import Tokens
from webhook.errors import UsageError
from webhook.kubeapi import api_client

log = logging.getLogger(__name__)
DEFAULT_ACCOUNT = ("entra-system", "entra-webhook-controller")


def run_controller(args: argparse.Namespace) -> int:
    settings = load_controller_settings(vars(args), os.environ)
    logs.configure(settings.log_level)
    api = api_client(settings.kubeconfig, "pass --kubeconfig, or run it in the cluster")
    if api is None:
        raise UsageError("needs the cluster API: run it in the cluster or pass --kubeconfig")
    verify: ssl.SSLContext | bool = True
    if settings.ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(settings.ca_file))
        except (OSError, ssl.SSLError) as error:
            raise UsageError(f"cannot use --ca-file {settings.ca_file}: {error}") from None
    graph = Graph(
        settings.graph_url,
        verify,
        settings.http_timeout_seconds,
        Retrying(retry_after_max=settings.retry_after_max_seconds, backoff=settings.backoff_seconds),
    )
    tokens = Tokens(
        settings.token_file,
        settings.authority_host,
        str(settings.ca_file) if settings.ca_file else True,
        settings.http_timeout_seconds,
    )
    kube = Kube(api)
    account = controller_account(settings)
    controller = Controller(api, settings, Provisioner(kube, graph, tokens, settings, account), kube)

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    identity = f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    elector = Elector(
        api, settings.lease_namespace, settings.lease_name, identity, settings.lease_seconds, settings.renew_seconds
    )
    log.info(
        "controller starting",
        extra={
            "identity": identity,
            "graph": settings.graph_url,
            "namespace": settings.namespace or "all",
            "cluster": settings.cluster_name,
            "service_account": ":".join(account),
        },
    )
    if not elector.acquire(stopping):
        return 0
    lost = threading.Event()

    def on_lost() -> None:
        lost.set()
        stopping.set()

    threading.Thread(target=elector.keep, args=(stopping, on_lost), name="lease", daemon=True).start()
    controller.start()
    while not stopping.wait(1.0):
        pass
    controller.stop()
    graph.close()
    if lost.is_set():
        return 1  # the Deployment restarts it as a standby
    elector.release()
    log.info("controller stopped")
    return 0


def controller_account(settings: ControllerSettings) -> tuple[str, str]:
    """NAMESPACE and NAME of the controller's service account: the setting, else the token's subject."""
    if settings.service_account:
        namespace, _, name = settings.service_account.partition(":")
        if not namespace or not name:
            raise UsageError(f"--service-account wants NAMESPACE:NAME, got {settings.service_account!r}")
        return namespace, name
    subject = _token_subject(settings.token_file)
    parts = subject.split(":") if subject else []
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return parts[2], parts[3]
    return DEFAULT_ACCOUNT


def _token_subject(path: Path) -> str | None:
    """The `sub` claim of the projected token, unverified: it only names who we are."""
    try:
        payload = path.read_text(encoding="utf-8").strip().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, IndexError, ValueError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else None
