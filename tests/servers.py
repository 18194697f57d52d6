"""Starting real `entra-webhook serve` processes for the tests, on loopback with real TLS (from the venv, or
from the image: tests/image.py)."""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509

from tests.image import start
from webhook.injector.certs import make_ca, make_serving, write_bundle


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certs(directory: Path) -> Path:
    ca = make_ca()
    write_bundle(directory, ca, make_serving(ca, ["localhost"], ["127.0.0.1"]))
    return directory


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    certs: Path
    log: Path
    metrics_url: str

    def client(self, cafile: Path | None = None, **options: object) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(cafile or self.certs / "ca.crt"))
        return httpx.Client(base_url=self.url, verify=context, timeout=10, **options)  # type: ignore[arg-type]

    def serving_serial(self, cafile: Path | None = None) -> int:
        """The serial number of the certificate a new TLS connection gets now."""
        context = ssl.create_default_context(cafile=str(cafile or self.certs / "ca.crt"))
        host, port = self.url.removeprefix("https://").split(":")
        with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return int(x509.load_der_x509_certificate(der).serial_number)

    def metrics(self) -> str:
        return httpx.get(self.metrics_url, timeout=5).text

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def wait_ready(served: Served, timeout: float = 20, verify: bool = True, path: str = "/readyz") -> None:
    deadline = time.monotonic() + timeout
    with served.client() if verify else httpx.Client(base_url=served.url, verify=False) as client:
        while time.monotonic() < deadline:
            if served.process.poll() is not None:
                raise RuntimeError(f"server exited with {served.process.returncode}:\n{served.logs()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(path).status_code == 200:
                    return
            time.sleep(0.05)
    raise RuntimeError(f"server not ready after {timeout}s:\n{served.logs()}")


@contextlib.contextmanager
def serve(
    certs: Path,
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
    verify: bool = True,
    ready: bool = True,
) -> Iterator[Served]:
    """`verify=False` waits without checking the certificate (the webhook makes its own); `ready=False`
    waits only until it answers `/healthz`, for tests of readiness itself."""
    port, metrics_port = port or free_port(), free_port()
    log = workdir / f"serve-{port}.log"
    listen = [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        str(metrics_port),
    ]
    tls = ["--cert-file", str(certs / "tls.crt"), "--key-file", str(certs / "tls.key")]
    with log.open("w") as output:
        process = start(["serve", *listen, *tls, *args], output, env)
    try:  # from here on, whatever fails, the process goes
        served = Served(f"https://127.0.0.1:{port}", process, certs, log, f"http://127.0.0.1:{metrics_port}/metrics")
        wait_ready(served, verify=verify, path="/readyz" if ready else "/healthz")
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
