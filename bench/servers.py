"""Server subprocesses for the HTTP bench: certificates, start, readiness over HTTPS, RSS, stop.

A server is always stopped by the context manager that started it, on success or error, so a
failed run never leaves a process holding a port or a core.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.pod import ROOT
from bench.sysinfo import cpus

BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Certs:
    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def key(self) -> Path:
        return self.directory / "tls.key"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"


class PortTaken(RuntimeError):
    """Another process bound a port between our pick and the server's bind: retry with new ports."""


@dataclass(frozen=True, slots=True)
class Running:
    name: str
    pid: int
    url: str
    log: Path
    ready_seconds: float  # from spawning the process to the first GET /readyz = 200


def make_certs(directory: Path) -> Certs:
    """Through the CLI, as an operator would make them."""
    command = [str(BIN / "entra-webhook"), "certs", "--out", str(directory), "--ip", "127.0.0.1", "--dns", "localhost"]
    subprocess.run(command, capture_output=True, check=True)
    return Certs(directory)


def pinning(cpu: int) -> list[str]:
    """A `taskset` prefix for one core, or nothing where there is no taskset or only one core."""
    available = cpus()
    if shutil.which("taskset") is None or len(available) < 2:
        return []
    return ["taskset", "-c", str(available[cpu])]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ours_command(certs: Certs, port: int, config: Path = ROOT / "examples") -> list[str]:
    """As deployed (metrics and admission logs on), but on free loopback ports and with no drain delay."""
    return [
        str(BIN / "entra-webhook"), "serve", "--host", "127.0.0.1", "--port", str(port),
        "--cert-file", str(certs.cert), "--key-file", str(certs.key),
        "--config", str(config), "--drain-seconds", "0",
        "--metrics-host", "127.0.0.1", "--metrics-port", str(free_port()),
    ]  # fmt: skip


def baseline_command(certs: Certs, port: int, parse: bool = False) -> list[str]:
    return [
        sys.executable, "-m", "bench.baseline_server", "--host", "127.0.0.1", "--port", str(port),
        "--cert-file", str(certs.cert), "--key-file", str(certs.key), *(["--parse"] if parse else []),
    ]  # fmt: skip


def https(certs: Certs, url: str, body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    """One request verified against our CA: GET, or POST of a JSON `body`."""
    context = ssl.create_default_context(cafile=str(certs.ca))
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def _wait_ready(process: subprocess.Popen[bytes], certs: Certs, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = _tail(log)
            error = PortTaken if "Address already in use" in tail else RuntimeError
            raise error(f"server exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(OSError):
            if https(certs, url + "/readyz", timeout=1)[0] == 200:
                return
        time.sleep(0.01)
    raise RuntimeError(f"server at {url} not ready after {timeout:g}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    return "(no log)"


@contextlib.contextmanager
def serving(name: str, command: list[str], certs: Certs, port: int, workdir: Path) -> Iterator[Running]:
    """Start `command` (already pinned), wait for GET /readyz = 200, and always stop it after."""
    log = workdir / f"{name}-{port}.log"
    url = f"https://127.0.0.1:{port}"
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        _wait_ready(process, certs, url, log, timeout=60)
        yield Running(name, process.pid, url, log, time.monotonic() - started)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak) of a live process, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            found[key] = int(value.split()[0])
    return found
