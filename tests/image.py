"""Where the tests start `entra-webhook`: from the venv, or from the built image's content.

`ENTRA_WEBHOOK_IMAGE=localhost/entra-agent-webhook:0.1.0` (what `make e2e-image` sets) switches every process
the tests start (`tests.servers.serve`, the e2e controller) to the image, run as the chart deploys it: as uid
65532, on a read-only root, with an empty writable /tmp (the chart's emptyDir), on the host's network. The
harness's files (certificates, kubeconfigs, tokens: the pytest run's temporary directory) are bind-mounted
at their own paths. They are the harness's own, some 0600; in a Pod the kubelet makes such files readable
to uid 65532 (fsGroup), here a user namespace does: the container's uid 65532 is the harness's user.

There is no container runtime here (podman's `run` needs cgroups this sandbox lacks): one working container
per test session (`buildah from`), its root bind-mounted read-only, and every process a `buildah run
--isolation chroot` in it, whose signals go to the process itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from tests.processes import DIE_WITH_PARENT

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILDAH = str(REPO_ROOT / "scripts" / "buildah.sh")
IMAGE = os.environ.get("ENTRA_WEBHOOK_IMAGE", "")
UID = 65532
PREFIX = "entra-webhook-e2e-"
# Container uid/gid 65532 is the harness's own (0); the image's own owners (root) sit far above the host's.
ID_MAPS = ["0:100000:65532", f"{UID}:0:1"]


def start(args: Sequence[str], output: IO[str], env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """`entra-webhook ARGS` with `env` added to its environment, stdout and stderr to `output`."""
    if IMAGE:
        return _session().start(args, output, env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "webhook.cli", *args],
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=DIE_WITH_PARENT,  # noqa: PLW1509 - one prepared prctl call
    )


def buildah(*args: str) -> str:
    return subprocess.run([BUILDAH, *args], check=True, capture_output=True, text=True).stdout.strip()


def descendants(pid: int) -> list[int]:
    """`pid`'s line of descendants, outermost first: under `buildah run`, its helpers and then the process
    in the container. A child is listed under the thread that started it, and buildah's are Go threads."""
    line: list[int] = []
    while True:
        children = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    children += [int(child) for child in task.joinpath("children").read_text().split()]
        if not children:
            return line
        pid = min(children)
        line.append(pid)


def innermost(pid: int) -> int:
    return [pid, *descendants(pid)][-1]


class ImageProcess(subprocess.Popen[str]):
    """A `buildah run`. Signals go to the process in the container (buildah would not pass them on), so a
    SIGTERM is the graceful stop it is in a Pod; a SIGKILL takes the whole line, as it takes a venv's
    process, so nothing outlives it and the exit status is the same."""

    def send_signal(self, sig: int) -> None:
        line = [self.pid, *descendants(self.pid)]
        for pid in reversed(line) if sig == signal.SIGKILL else line[-1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Session:
    """One working container of IMAGE for this test run, its root read-only; removed at exit."""

    def __init__(self) -> None:
        remove_stale()
        self.name = f"{PREFIX}{os.getpid()}"
        self.scratch = Path(tempfile.mkdtemp(prefix=self.name + "-"))
        maps = [flag for id_map in ID_MAPS for flag in ("--userns-uid-map", id_map, "--userns-gid-map", id_map)]
        buildah("from", "--quiet", "--name", self.name, *maps, IMAGE)
        atexit.register(self.remove)
        self.rootfs = buildah("mount", self.name)
        buildah("run", "--isolation", "chroot", self.name, "--", "true")  # makes the mount points buildah needs
        # Read-only in the host's mount namespace, where buildah builds each run's; /run stays writable
        # there only because buildah writes and removes its /run/.containerenv on every run.
        run = self.scratch / "run"
        run.mkdir()
        subprocess.run(["mount", "--bind", self.rootfs, self.rootfs], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", self.rootfs], check=True)
        subprocess.run(["mount", "--bind", str(run), f"{self.rootfs}/run"], check=True)
        self.numbers = iter(range(1, 1_000_000))

    def start(self, args: Sequence[str], output: IO[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
        empty = self.scratch / f"tmp-{next(self.numbers)}"  # the Pod's emptyDir at /tmp
        empty.mkdir(mode=0o1777)
        empty.chmod(0o1777)
        volumes = ["--volume", f"{empty}:/tmp"]
        for directory in mounted(args):
            volumes += ["--volume", f"{directory}:{directory}"]
        variables = [flag for name, value in env.items() for flag in ("--env", f"{name}={value}")]
        command = [BUILDAH, "run", "--isolation", "chroot", "--user", f"{UID}:{UID}", *volumes, *variables,
                   self.name, "--", "entra-webhook", *args]  # fmt: skip
        return ImageProcess(command, stdout=output, stderr=subprocess.STDOUT, text=True, preexec_fn=DIE_WITH_PARENT)

    def remove(self) -> None:
        unmount(self.rootfs)
        subprocess.run([BUILDAH, "rm", self.name], capture_output=True, check=False)
        shutil.rmtree(self.scratch, ignore_errors=True)


def mounted(args: Sequence[str]) -> list[str]:
    """The directories the container needs for the paths in `args`: a path in a pytest run's temporary
    directory brings the whole of it (a kubeconfig names certificates beside it), any other its own
    directory. They must lie under /tmp, which is the emptyDir in the container, so their mount points
    never touch the read-only root."""
    found = set()
    for arg in args:
        path = Path(arg.partition("=")[2] if arg.startswith("--") else arg)
        if path.is_absolute() and path.exists():
            directory = path if path.is_dir() else path.parent
            run = next((d for d in directory.parents if d.parent.name.startswith("pytest-of-")), None)
            directory = run or directory
            if not directory.is_relative_to("/tmp"):
                raise ValueError(f"image mode mounts paths under /tmp only, not {directory}")
            found.add(directory)
    return sorted(str(d) for d in found if not any(d != o and d.is_relative_to(o) for o in found))


def unmount(rootfs: str) -> None:
    """Every mount at or under `rootfs` in this namespace, innermost first."""
    with open("/proc/self/mountinfo") as table:
        points = [line.split()[4] for line in table]
    for point in sorted({p for p in points if p == rootfs or p.startswith(rootfs + "/")}, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_stale() -> None:
    """Containers of earlier runs that died without cleaning up (SIGKILL): theirs is a dead pid."""
    names = buildah("containers", "--noheading", "--format", "{{.ContainerName}}").split()
    for name in names:
        pid = name.removeprefix(PREFIX)
        if name.startswith(PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            unmount(buildah("mount", name))
            subprocess.run([BUILDAH, "rm", name], capture_output=True, check=False)


_current: list[Session] = []


def root() -> Path:
    """The image's root filesystem (read-only), as this test run's container holds it."""
    return Path(_session().rootfs)


def _session() -> Session:
    if not _current:
        _current.append(Session())
    return _current[0]
