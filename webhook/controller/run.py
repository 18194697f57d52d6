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
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from webhook.common import logs
from webhook.common.errors import UsageError
from webhook.common.kubeapi import api_client, api_errors, describe_api_error
from webhook.controller.credentials import Credentials
from webhook.controller.graph import Graph, Retrying
from webhook.controller.health import HealthServer
from webhook.controller.install import Install
from webhook.controller.kube import Kube
from webhook.controller.leader import Elector
from webhook.controller.loop import Controller
from webhook.controller.metrics import ControllerMetrics
from webhook.controller.provision import Provisioner
from webhook.controller.settings import ControllerSettings, load_controller_settings
from webhook.controller.tokens import Tokens

log = logging.getLogger(__name__)
DEFAULT_ACCOUNT = ("entra-system", "entra-webhook-controller")


def run_controller(args: argparse.Namespace) -> int:
    settings = load_controller_settings(vars(args), os.environ)
    logs.configure(settings.log_level)
    api = api_client(settings.kubeconfig, "pass --kubeconfig, or run it in the cluster")
    if api is None:
        raise UsageError("needs the cluster API: run it in the cluster or pass --kubeconfig")
    metrics = ControllerMetrics()
    graph = Graph(
        settings.graph_url,
        _trust(settings),
        settings.http_timeout_seconds,
        Retrying(retry_after_max=settings.retry_after_max_seconds, backoff=settings.backoff_seconds),
        observe=metrics.graph_request,
    )
    tokens = Tokens(
        settings.token_file,
        settings.authority_host,
        str(settings.ca_file) if settings.ca_file else True,
        settings.http_timeout_seconds,
        observe=metrics.token,
    )
    kube = Kube(api)
    account = controller_account(settings)
    provisioner = Provisioner(kube, Credentials(kube, graph, tokens, settings, account), settings)
    controller = Controller(api, settings, provisioner, kube, metrics.reconciled, metrics.watch_restarted)
    metrics.follow(controller.identity_counts, controller.queue.pending)

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
    probes = Probes(elector, controller)
    server = serve_probes(settings, probes, metrics)
    log.info(
        "controller starting",
        extra={
            "identity": identity,
            "graph": settings.graph_url,
            "namespace": settings.namespace or "all",
            "cluster": settings.cluster_name,
            "service_account": ":".join(account),
            "metrics": f"http://{settings.metrics_host}:{server.port}/metrics" if server else None,
        },
    )
    metrics.leading(False)
    install = Install(kube, settings.install_binding, account) if settings.install_binding else None
    try:
        if not elector.acquire(stopping):
            return 0
        code = _lead(elector, controller, probes, metrics, stopping, install)
        graph.close()
        return code
    finally:
        if server is not None:
            server.stop()


def _lead(
    elector: Elector,
    controller: Controller,
    probes: Probes,
    metrics: ControllerMetrics,
    stopping: threading.Event,
    install: Install | None,
) -> int:
    """Reconcile until stopped (0, the Lease released) or until the Lease is lost (1: restart as a standby).
    Meanwhile hold the install, and release every identity when it is being removed."""
    metrics.leading(True)
    lost = threading.Event()

    def on_lost() -> None:
        metrics.leading(False)
        lost.set()
        stopping.set()

    probes.keeper = threading.Thread(target=elector.keep, args=(stopping, on_lost), name="lease", daemon=True)
    probes.keeper.start()
    controller.start()
    probes.leading = True
    watching = _Uninstall(install, controller)
    watching.check()
    ticks = 0
    while not stopping.wait(1.0):
        ticks += 1
        if ticks % INSTALL_CHECK_TICKS == 0:
            watching.check()
    controller.stop()
    if lost.is_set():
        # An install being removed takes the Lease's Role with it: release first. Else the next leader holds it.
        watching.check(only_if_going=True)
        return 1
    watching.check(stopping=True)
    elector.release()
    log.info("controller stopped")
    return 0


INSTALL_CHECK_TICKS = 2  # seconds between two looks at the install (three GETs)


@dataclass
class _Uninstall:
    """The leader's side of docs/operations/uninstall.md: hold the install; when it goes, release every
    identity once and let it go; on any other stop, let it go too."""

    install: Install | None
    controller: Controller
    done: bool = False

    def check(self, stopping: bool = False, only_if_going: bool = False) -> None:
        """Look at the install: release and let go when it is going; else hold it, or let it go when stopping
        (`only_if_going`: neither, the Lease being lost to another leader that holds it)."""
        if self.install is None or self.done:
            return
        try:
            if self.install.going() if only_if_going else self.install.hold_unless_going():
                count = self.controller.release_all("the controller's install or its CRDs are being removed")
                log.warning("the install or the CRDs are being removed: released %d AgentIdentities, each left in "
                            "Entra", count)  # fmt: skip
            elif not stopping or only_if_going:
                return
            self.install.let_go()  # nothing waits on a controller that is not running
            self.done = True
        except api_errors() as error:
            log.warning("could not check the install (ClusterRole and ClusterRoleBinding %s, ServiceAccount %s): %s",
                        self.install.name, "/".join(self.install.account), describe_api_error(error))  # fmt: skip


def _trust(settings: ControllerSettings) -> ssl.SSLContext | bool:
    if settings.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    except (OSError, ssl.SSLError) as error:
        raise UsageError(f"cannot use --ca-file {settings.ca_file}: {error}") from None


@dataclass
class Probes:
    """Liveness and readiness of this replica, from what it holds in memory."""

    elector: Elector
    controller: Controller
    leading: bool = False
    keeper: threading.Thread | None = None

    def alive(self) -> tuple[bool, str]:
        """A standby is alive while it answers; a leader while its watches, workers and Lease renewal run."""
        if not self.leading:
            return True, "standing by"
        stopped = self.controller.stopped_threads()
        if self.keeper is not None and not self.keeper.is_alive() and not self.controller.stopping.is_set():
            stopped.append(self.keeper.name)
        if stopped:
            return False, f"threads stopped: {', '.join(stopped)}"
        return True, "leading"

    def ready(self) -> tuple[bool, str]:
        """A standby while it reaches the Lease (it could take over); a leader once both kinds are listed."""
        if not self.leading:
            return self.elector.healthy()
        unlisted = self.controller.unlisted()
        if unlisted:
            return False, f"leading, but has not listed {' and '.join(unlisted)} yet"
        return True, "leading, with agentblueprints and agentidentities listed"


def serve_probes(settings: ControllerSettings, probes: Probes, metrics: ControllerMetrics) -> HealthServer | None:
    if not settings.metrics_port:
        return None
    try:
        server = HealthServer(settings.metrics_host, settings.metrics_port, probes.alive, probes.ready,
                              metrics.registry)  # fmt: skip
    except OSError as error:
        raise UsageError(
            f"cannot serve /healthz, /readyz and /metrics on {settings.metrics_host}:{settings.metrics_port} "
            f"({error}): choose another --metrics-port, or 0 to turn them off"
        ) from None
    server.start()
    return server


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
