"""Driving wrk: install it if missing, POST the AdmissionReview from Lua, read its figures as JSON.

The Lua `done` hook prints the summary and latency percentiles itself, so nothing depends on
parsing wrk's human-readable units.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MARKER = "BENCH_JSON "

_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(%(body)s, "rb"))
wrk.body = file:read("*a")
file:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(marker)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect_errors":%%d,"read_errors":%%d,' ..
    '"write_errors":%%d,"status_errors":%%d,"timeouts":%%d,"p50_us":%%.1f,"p90_us":%%.1f,"p99_us":%%.1f,' ..
    '"max_us":%%.1f,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


@dataclass(frozen=True, slots=True)
class WrkRun:
    requests: int
    duration_us: int
    bytes: int
    connect_errors: int
    read_errors: int
    write_errors: int
    status_errors: int
    timeouts: int
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float
    mean_us: float

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def errors(self) -> int:
        return self.connect_errors + self.read_errors + self.write_errors + self.status_errors + self.timeouts

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": self.rps}


def ensure_wrk() -> str:
    """wrk's path, installing the Debian package first if needed (apt-get update only on failure)."""
    found = shutil.which("wrk")
    if found:
        return found
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=True)
        subprocess.run(install, capture_output=True, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not on PATH even after apt-get install wrk")
    return found


_ROTATING = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for line in io.lines(%(bodies)s) do bodies[#bodies + 1] = line end
local next_body = 0
request = function()
  next_body = next_body %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end
"""


def write_script(directory: Path, body: bytes) -> Path:
    body_file = directory / "review.json"
    body_file.write_bytes(body)
    script = directory / "post.lua"
    # A JSON string literal is a valid Lua string literal for the ASCII paths tempfile makes.
    script.write_text(_LUA % {"body": json.dumps(str(body_file)), "marker": MARKER}, encoding="utf-8")
    return script


def write_rotating_script(directory: Path, bodies: list[bytes]) -> Path:
    """A script that posts `bodies` in turn (compact JSON: one a line), with the same summary."""
    bodies_file = directory / "reviews.jsonl"
    bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
    script = directory / "post-rotating.lua"
    done = _LUA[_LUA.index("done = function") :]
    text = _ROTATING % {"bodies": json.dumps(str(bodies_file))} + done % {"marker": MARKER}
    script.write_text(text, encoding="utf-8")
    return script


def run(
    wrk: str,
    url: str,
    script: Path,
    seconds: float,
    threads: int,
    connections: int,
    pin: list[str],
) -> WrkRun:
    command = [*pin, wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(script)]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            return WrkRun(**json.loads(line.removeprefix(MARKER)))
    raise RuntimeError(f"wrk printed no {MARKER.strip()} line:\n{done.stdout}\n{done.stderr}")
