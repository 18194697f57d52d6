"""A real Kubernetes control plane (1.20 or 1.36) on loopback for the e2e tests.

etcd, kube-apiserver and kube-controller-manager run as plain processes (no
Docker, no kubelet: Pods are stored and never run). The binaries come from
``scripts/control-plane-build.sh VERSION``, which builds them once (1.20 from
Debian's packages, 1.36 from pinned Go modules) and caches them.

Typical use (e.g. from a session-scoped pytest fixture)::

    bin_dir = build_binaries("1.36")
    cp = start_control_plane(bin_dir, tmp_path_factory.mktemp("control-plane"), "1.36")
    try:
        cp.kubectl("create", "namespace", "demo")
    finally:
        cp.stop()

Every process is started in its own session and is killed by PID and
process group in :meth:`ControlPlane.stop`, which also runs from an
``atexit`` hook; on Linux the children additionally get ``SIGKILL`` from the
kernel if the Python process dies without running ``atexit``.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.processes import DIE_WITH_PARENT

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "control-plane-build.sh"

#: The versions the suite runs on: the oldest we support (no native sidecars, no PodSecurity admission, no
#: matchConditions) and a current one (native sidecars GA and on by default).
VERSIONS = ("1.20", "1.36")

#: Issuer (and API audience) of the service account tokens this API server signs.
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
#: First address of SERVICE_CLUSTER_IP_RANGE: the ``kubernetes`` Service's ClusterIP.
KUBERNETES_SERVICE_IP = "10.0.0.1"

ADMIN_USER = "e2e-admin"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"

DEFAULT_READY_TIMEOUT = 90.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 40

_ETCD = "etcd"
_APISERVER = "kube-apiserver"
_CONTROLLER_MANAGER = "kube-controller-manager"


class ControlPlaneError(RuntimeError):
    """Building, starting or waiting for the control plane failed."""


# --------------------------------------------------------------------------
# binaries
# --------------------------------------------------------------------------


def parse_version(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def build_binaries(version: str, timeout: float | None = 3600.0) -> Path:
    """Build (first run: ~4 minutes for 1.20, ~20 for 1.36 on 2 cores) or find (cached) the binaries.

    Runs ``scripts/control-plane-build.sh VERSION``; its progress goes to this
    process's stderr. Returns the directory holding ``etcd``,
    ``kube-apiserver``, ``kube-controller-manager`` and ``kubectl``.
    """
    try:
        result = subprocess.run(
            ["bash", str(BUILD_SCRIPT), version],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ControlPlaneError(f"{BUILD_SCRIPT} did not finish in {timeout}s") from exc
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ControlPlaneError(
            f"{BUILD_SCRIPT} failed with exit code {result.returncode} (its log is on stderr above)"
        )
    bin_dir = Path(lines[-1])
    for name in (_ETCD, _APISERVER, _CONTROLLER_MANAGER, "kubectl"):
        if not os.access(bin_dir / name, os.X_OK):
            raise ControlPlaneError(f"{BUILD_SCRIPT} reported {bin_dir}, which lacks {name}")
    return bin_dir


# --------------------------------------------------------------------------
# process helpers
# --------------------------------------------------------------------------


def _free_loopback_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (all held open until chosen)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process and its group, then SIGKILL after ``grace`` s."""

    def signal_all(sig: signal.Signals) -> None:
        # start_new_session=True made the child the leader of group == pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    signal_all(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        signal_all(signal.SIGKILL)
        proc.wait(timeout=30)
    # Anything left in the group (the binaries do not fork, but be sure).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------
# certificates and credentials
# --------------------------------------------------------------------------

_OPENSSL_CONFIG = """\
[ req ]
distinguished_name = dn
prompt = no

[ dn ]
CN = placeholder

[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash

[ v3_serving ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = @alt_names

[ alt_names ]
IP.1 = 127.0.0.1
IP.2 = {service_ip}
DNS.1 = localhost
DNS.2 = kubernetes
DNS.3 = kubernetes.default
DNS.4 = kubernetes.default.svc
DNS.5 = kubernetes.default.svc.cluster.local
"""


def _openssl(*args: str, cwd: Path) -> None:
    try:
        subprocess.run(
            ["openssl", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
        )
    except FileNotFoundError as exc:
        raise ControlPlaneError("the openssl CLI is required (apt-get install openssl)") from exc
    except subprocess.CalledProcessError as exc:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed:\n{exc.stderr}") from exc


def _generate_pki(pki: Path) -> None:
    """CA, API server serving cert signed by it, service account key pair."""
    pki.mkdir(parents=True, exist_ok=True)
    config = pki / "openssl.cnf"
    config.write_text(_OPENSSL_CONFIG.format(service_ip=KUBERNETES_SERVICE_IP))
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=pki)
    _openssl(
        "req", "-x509", "-new", "-sha256", "-key", "ca.key", "-days", "3650",
        "-config", "openssl.cnf", "-extensions", "v3_ca",
        "-subj", "/CN=entra-webhook-e2e-ca", "-out", "ca.crt",
        cwd=pki,
    )  # fmt: skip
    _openssl("genrsa", "-out", "apiserver.key", "2048", cwd=pki)
    _openssl(
        "req", "-new", "-sha256", "-key", "apiserver.key", "-config", "openssl.cnf",
        "-subj", "/CN=kube-apiserver", "-out", "apiserver.csr",
        cwd=pki,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-sha256", "-in", "apiserver.csr", "-CA", "ca.crt",
        "-CAkey", "ca.key", "-CAcreateserial", "-days", "3650",
        "-extfile", "openssl.cnf", "-extensions", "v3_serving", "-out", "apiserver.crt",
        cwd=pki,
    )  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    for key in ("ca.key", "apiserver.key", "sa.key"):
        (pki / key).chmod(0o600)


def _write_kubeconfig(path: Path, server: str, ca_file: Path, user: str, token: str) -> None:
    # JSON is valid YAML: kubectl and the `kubernetes` Python client read it.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": user}}],
        "current-context": "e2e",
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2) + "\n")
    path.chmod(0o600)


# --------------------------------------------------------------------------
# the control plane
# --------------------------------------------------------------------------

_LIVE: set[ControlPlane] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        planes = list(_LIVE)
    for plane in planes:
        with contextlib.suppress(Exception):
            plane.stop()


atexit.register(_stop_all_at_exit)


@dataclass(eq=False)
class ControlPlane:
    """A running etcd + kube-apiserver + kube-controller-manager."""

    workdir: Path
    """Directory owned by this instance: pki/, etcd data, kubeconfigs, logs/."""
    server: str
    """API server URL, ``https://127.0.0.1:PORT``."""
    kubeconfig: Path
    """Admin kubeconfig (bearer token, group ``system:masters``)."""
    ca_file: Path
    """CA that signed the API server's serving certificate."""
    bin_dir: Path
    version: tuple[int, int]
    """(major, minor) of the running API server, e.g. (1, 36)."""
    token: str
    """The admin bearer token used by :attr:`kubeconfig`."""
    etcd_url: str
    apiserver_port: int
    log_dir: Path
    _commands: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- processes ------------------------------------------------------------

    def log_file(self, name: str) -> Path:
        """The log file of process ``name`` (``etcd``, ``kube-apiserver``, ...)."""
        return self.log_dir / f"{name}.log"

    def _spawn(self, name: str) -> None:
        with self.log_file(name).open("ab") as log:
            log.write(f"\n==== {time.strftime('%H:%M:%S')} starting {name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self._commands[name],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=DIE_WITH_PARENT,  # noqa: PLW1509 - only one prepared prctl call
                env=_child_env(),
            )
        self._procs[name] = proc

    def _stop_process(self, name: str, grace: float = STOP_GRACE_SECONDS) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            _kill_group(proc, grace)

    def stop(self) -> None:
        """Kill every process this instance started (idempotent).

        The workdir (logs, etcd data) is left for inspection; its owner removes it.
        """
        with self._lock:
            for name in (_CONTROLLER_MANAGER, _APISERVER, _ETCD):
                self._stop_process(name)
            with _LIVE_LOCK:
                _LIVE.discard(self)

    def restart_apiserver(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Stop kube-apiserver and start it again on the same port and flags."""
        with self._lock:
            if _APISERVER not in self._procs:
                raise ControlPlaneError("control plane is stopped")
            self._stop_process(_APISERVER)
            self._spawn(_APISERVER)
        self.wait_ready(timeout)

    def pids(self) -> dict[str, int]:
        """PIDs of the processes currently managed, by name."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- API access -------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float = 10.0,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """One authenticated API call; returns (HTTP status, decoded JSON body or text).

        HTTP errors are returned, not raised; connection errors raise OSError.
        """
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),  # loopback: never through a proxy
            urllib.request.HTTPSHandler(context=self._ssl_context()),
        )
        try:
            with opener.open(req, timeout=timeout) as resp:
                status, raw = int(resp.status), resp.read()
        except urllib.error.HTTPError as err:
            status, raw = int(err.code), err.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def kubeconfig_for(self, user: str, token: str, path: Path) -> Path:
        """A kubeconfig that authenticates as someone else (a service account's token, say)."""
        _write_kubeconfig(path, self.server, self.ca_file, user, token)
        return path

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the kubectl of the same version against this control plane."""
        cmd = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=_child_env(),
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
        return result

    # -- readiness --------------------------------------------------------------

    def _diagnostics(self) -> str:
        parts = []
        names = [_ETCD, _APISERVER, _CONTROLLER_MANAGER]
        # Dead processes first: their logs tell why.
        names.sort(key=lambda name: name in self._procs and self._procs[name].poll() is None)
        for name in names:
            proc = self._procs.get(name)
            state = (
                "not running"
                if proc is None
                else ("running" if proc.poll() is None else f"exited with {proc.returncode}")
            )
            parts.append(f"--- {name} ({state}), last lines of {self.log_file(name)}:\n{_tail(self.log_file(name))}")
        return "\n".join(parts)

    def _check_alive(self, names: Sequence[str]) -> None:
        for name in names:
            proc = self._procs.get(name)
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise ControlPlaneError(f"{name} is not running (exit code {code})\n{self._diagnostics()}")

    def _wait_for(
        self,
        what: str,
        probe: Callable[[], bool],
        deadline: float,
        alive: Sequence[str],
    ) -> None:
        last_error = ""
        while True:
            self._check_alive(alive)
            try:
                if probe():
                    return
            except (OSError, ValueError, http.client.HTTPException) as exc:
                # connection refused, TLS not up yet, half-written answer, ...
                last_error = f" (last error: {exc})"
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"timed out waiting for {what}{last_error}\n{self._diagnostics()}")
            time.sleep(0.25)

    def _etcd_healthy(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.etcd_url + "/health", timeout=2) as resp:
            body = json.loads(resp.read().decode())
        return isinstance(body, dict) and body.get("health") == "true"

    def _apiserver_ready(self) -> bool:
        status, _ = self.request("GET", "/readyz", timeout=5)
        return status == 200

    def _default_service_account_exists(self) -> bool:
        status, _ = self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default", timeout=5)
        return status == 200

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Wait for /readyz to answer 200, then for the ``default`` ServiceAccount.

        The ServiceAccount is created by kube-controller-manager, so its presence
        proves the controllers run. Raises ControlPlaneError with the tail of
        every process log on timeout or if a process died.
        """
        deadline = time.monotonic() + timeout
        everything = (_ETCD, _APISERVER, _CONTROLLER_MANAGER)
        self._wait_for("kube-apiserver /readyz", self._apiserver_ready, deadline, everything)
        self._wait_for(
            "ServiceAccount default/default (created by kube-controller-manager)",
            self._default_service_account_exists,
            deadline,
            everything,
        )

    def service_account_token(
        self, namespace: str, name: str, audiences: Sequence[str] = (), seconds: int = 3600
    ) -> str:
        """A token for a ServiceAccount from the TokenRequest API (what a kubelet puts in a projected volume).

        Works on every version: 1.24+ no longer makes token Secrets, and 1.20 already serves TokenRequest.
        """
        spec: dict[str, Any] = {"expirationSeconds": seconds}
        if audiences:
            spec["audiences"] = list(audiences)
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        status, body = self.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", request)
        if status != 201 or not isinstance(body, dict):
            raise ControlPlaneError(f"TokenRequest for {namespace}/{name} answered {status}: {body!r}")
        return str(body["status"]["token"])

    @property
    def has_token_secrets(self) -> bool:
        """Whether ServiceAccounts get token Secrets (before 1.24), which Pod admission waits for."""
        return self.version < (1, 24)

    def server_version(self) -> dict[str, Any]:
        """The API server's ``/version`` document."""
        status, body = self.request("GET", "/version")
        if status != 200 or not isinstance(body, dict):
            raise ControlPlaneError(f"GET /version answered {status}: {body!r}")
        return body


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # Loopback only: make sure no proxy setting reroutes webhook or API calls.
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(key, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def start_control_plane(
    bin_dir: Path, workdir: Path, version: str, timeout: float = DEFAULT_READY_TIMEOUT
) -> ControlPlane:
    """Start etcd, kube-apiserver and kube-controller-manager of ``version`` under ``workdir``.

    Returns once the API server is ready and the controllers have created the
    ``default`` ServiceAccount. On failure everything started is stopped and
    ControlPlaneError (with the process log tails) is raised.
    """
    bin_dir = bin_dir.resolve()
    workdir = workdir.resolve()
    release = parse_version(version)
    workdir.mkdir(parents=True, exist_ok=True)
    pki = workdir / "pki"
    log_dir = workdir / "logs"
    log_dir.mkdir(exist_ok=True)
    _generate_pki(pki)

    etcd_port, etcd_peer_port, apiserver_port = _free_loopback_ports(3)
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    etcd_peer_url = f"http://127.0.0.1:{etcd_peer_port}"
    server = f"https://127.0.0.1:{apiserver_port}"
    ca_file = pki / "ca.crt"

    admin_token = secrets.token_hex(24)
    kcm_token = secrets.token_hex(24)
    token_file = pki / "tokens.csv"
    # token,user,uid,"group1,group2"
    token_file.write_text(
        f'{admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'
        f'{kcm_token},{CONTROLLER_MANAGER_USER},{CONTROLLER_MANAGER_USER},"system:masters"\n'
    )
    token_file.chmod(0o600)
    kubeconfig = workdir / "admin.kubeconfig"
    _write_kubeconfig(kubeconfig, server, ca_file, ADMIN_USER, admin_token)
    kcm_kubeconfig = workdir / "controller-manager.kubeconfig"
    _write_kubeconfig(kcm_kubeconfig, server, ca_file, CONTROLLER_MANAGER_USER, kcm_token)

    cert_dir = workdir / "apiserver-certs"
    cert_dir.mkdir(exist_ok=True)
    commands = {
        _ETCD: [
            str(bin_dir / _ETCD),
            "--name=e2e",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={etcd_peer_url}",
            f"--initial-advertise-peer-urls={etcd_peer_url}",
            f"--initial-cluster=e2e={etcd_peer_url}",
            "--initial-cluster-state=new",
            "--logger=zap",
            "--log-outputs=stderr",
        ],
        _APISERVER: [
            str(bin_dir / _APISERVER),
            f"--etcd-servers={etcd_url}",
            f"--secure-port={apiserver_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            *(["--insecure-port=0"] if release < (1, 24) else []),  # gone in 1.24, where it is always off
            f"--cert-dir={cert_dir}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--token-auth-file={token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # The `kubernetes` Endpoints would point at 127.0.0.1, which
            # validation rejects (loopback), logging an error every 10 s.
            "--endpoint-reconciler-type=none",
            # No kube-proxy here: a webhook behind a Service is called at its endpoints, not its ClusterIP.
            "--enable-aggregator-routing=true",
        ],
        _CONTROLLER_MANAGER: [
            str(bin_dir / _CONTROLLER_MANAGER),
            f"--kubeconfig={kcm_kubeconfig}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={ca_file}",
            "--leader-elect=false",
            *(["--port=0"] if release < (1, 24) else []),  # the insecure port is gone in 1.24
            "--secure-port=0",  # no HTTPS endpoint of its own: nothing here scrapes it
        ],
    }

    plane = ControlPlane(
        workdir=workdir,
        server=server,
        kubeconfig=kubeconfig,
        ca_file=ca_file,
        bin_dir=bin_dir,
        version=release,
        token=admin_token,
        etcd_url=etcd_url,
        apiserver_port=apiserver_port,
        log_dir=log_dir,
        _commands=commands,
    )
    with _LIVE_LOCK:
        _LIVE.add(plane)
    try:
        deadline = time.monotonic() + timeout
        plane._spawn(_ETCD)
        plane._wait_for("etcd /health", plane._etcd_healthy, deadline, (_ETCD,))
        plane._spawn(_APISERVER)
        plane._spawn(_CONTROLLER_MANAGER)
        plane.wait_ready(max(1.0, deadline - time.monotonic()))
    except BaseException:
        plane.stop()
        raise
    return plane
