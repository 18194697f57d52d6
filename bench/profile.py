"""(d) A profile of the served path under load: py-spy samples `entra-webhook serve` while wrk drives it.

py-spy reads the interpreter's stacks from outside (no hooks in the process, so the profile does not
distort what it measures much); the report is the functions where the samples were when taken
(self) and those on the stack at all (inclusive), as shares of all samples, and the same by file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import servers, wrk
from bench.pod import review_body

PY_SPY = Path(sys.executable).parent / "py-spy"


@dataclass(slots=True)
class Profile:
    samples: int = 0
    self_time: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    by_file: Counter[str] = field(default_factory=Counter)
    rps: float = 0.0


def _function(frame: str) -> tuple[str, str]:
    """`read_body (webhook/injector/server.py:58)` -> (`read_body (webhook/injector/server.py)`,
    `webhook/injector/server.py`): lines merged, so a function's samples add up wherever in it they fell."""
    name, _, location = frame.rpartition(" (")
    path = location.rstrip(")").rpartition(":")[0] or location.rstrip(")")
    return f"{name} ({path})", path


def parse(raw: str) -> Profile:
    """py-spy's `raw` format: one `frame;frame;...;leaf COUNT` line per distinct stack, outermost first."""
    profile = Profile()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [frame for frame in stack.split(";") if frame and not frame.startswith("process ")]
        if not frames:
            continue
        profile.samples += samples
        leaf, path = _function(frames[-1])
        profile.self_time[leaf] += samples
        profile.by_file[path] += samples
        for function in {_function(frame)[0] for frame in frames}:
            profile.inclusive[function] += samples
    return profile


def run(seconds: float = 8.0, rate: int = 200) -> Profile:
    if not PY_SPY.exists() and shutil.which("py-spy") is None:
        raise RuntimeError("py-spy is not installed: `make install` installs the dev dependencies")
    tool = wrk.ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="entra-bench-profile-") as temp:
        workdir = Path(temp)
        certs = servers.make_certs(workdir / "certs")
        script = wrk.write_script(workdir, review_body())
        port = servers.free_port()
        command = [*servers.pinning(1), *servers.ours_command(certs, port)]
        output = workdir / "profile.txt"
        with servers.serving("ours-profiled", command, certs, port, workdir) as running:
            url = running.url + "/mutate"
            wrk.run(tool, url, script, 2, 1, 8, servers.pinning(0))  # warm-up
            spy = subprocess.Popen(
                [str(PY_SPY), "record", "--pid", str(running.pid), "--duration", f"{seconds:g}", "--rate", str(rate),
                 "--format", "raw", "--output", str(output), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                loaded = wrk.run(tool, url, script, seconds + 1, 1, 8, servers.pinning(0))
            finally:
                _, error = spy.communicate(timeout=seconds + 60)
            if spy.returncode != 0 or not output.exists():
                raise RuntimeError(f"py-spy failed ({spy.returncode}): {error.decode(errors='replace')[-500:]}")
        profile = parse(output.read_text(encoding="utf-8"))
        profile.rps = loaded.rps
        return profile


def lines(profile: Profile, top: int = 15) -> list[str]:
    total = profile.samples or 1
    rows = [
        "",
        f"(d) Profile of ours under wrk -c8 ({profile.samples:,} py-spy samples, {profile.rps:,.0f} req/s while "
        "sampled): where the time goes",
        "  by file (self time):",
    ]
    rows += [f"    {count / total:6.1%}  {name}" for name, count in profile.by_file.most_common(top)]
    rows.append("  functions, self time:")
    rows += [f"    {count / total:6.1%}  {name}" for name, count in profile.self_time.most_common(top)]
    rows.append("  functions, inclusive (on the stack), ours only:")
    ours = [(name, count) for name, count in profile.inclusive.most_common() if "(webhook/" in name]
    rows += [f"    {count / total:6.1%}  {name}" for name, count in ours[:top]]
    return rows
