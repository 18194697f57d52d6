"""A CycloneDX SBOM (JSON, spec 1.6) of the Python packages in the image, from the lock.

    python -m scripts.sbom [--out FILE]

requirements/runtime.txt is what the Dockerfile installs (pip --require-hashes): every package at its
pinned version, kept where its environment marker holds in the image (Linux, x86_64, CPython 3.11),
less what scripts/image_prune.py removes from the venv. Each becomes a `library` component named by
its purl (pkg:pypi/NAME@VERSION); the lock's `# via` lines give the dependency graph, rooted at the
webhook itself. Written by hand rather than by cyclonedx-bom: the lock already holds every fact
used here, and that tool neither evaluates the markers for the image's platform nor knows the prune.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.utils import canonicalize_name

import webhook
from scripts.image_prune import ASYNC_ONLY

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK = REPO_ROOT / "requirements" / "runtime.txt"
PROJECT = "entra-agent-webhook"
IMAGE = "entra-agent-webhook"
# The image's interpreter and platform, for the lock's environment markers.
IMAGE_ENVIRONMENT = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "sys_platform": "linux",
    "os_name": "posix",
    "python_version": "3.11",
    "python_full_version": "3.11.11",
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)\s*(?:;(?P<marker>[^\\]+))?")
VIA = re.compile(r"^\s+#\s+(?:via\s+)?(?P<name>[A-Za-z0-9._-]+)(?:\s+\(pyproject\.toml\))?\s*$")


@dataclass
class Pinned:
    name: str
    version: str
    marker: str | None
    needed_by: list[str] = field(default_factory=list)

    @property
    def purl(self) -> str:
        return f"pkg:pypi/{self.name}@{self.version}"


def read_lock(text: str) -> dict[str, Pinned]:
    """Every pin of a `uv pip compile` lock with the names its `# via` lines give (`-c` lines skipped)."""
    pins: dict[str, Pinned] = {}
    current: Pinned | None = None
    for line in text.splitlines():
        if pin := PIN.match(line):
            name = canonicalize_name(pin["name"])
            current = pins[name] = Pinned(name, pin["version"], (pin["marker"] or "").strip() or None)
        elif current and (via := VIA.match(line)) and via["name"] not in {"via", "-c"}:  # a bare "# via" heads a list
            current.needed_by.append(canonicalize_name(via["name"]))
    return pins


def in_image(pins: dict[str, Pinned]) -> dict[str, Pinned]:
    pruned = {canonicalize_name(name) for name in ASYNC_ONLY}
    return {
        name: pin
        for name, pin in pins.items()
        if name not in pruned and (pin.marker is None or Marker(pin.marker).evaluate(IMAGE_ENVIRONMENT))
    }


def bom(pins: dict[str, Pinned], version: str, timestamp: datetime) -> dict[str, Any]:
    project = canonicalize_name(PROJECT)
    root = f"pkg:pypi/{project}@{version}"
    depends: dict[str, list[str]] = {root: []}
    for pin in pins.values():
        depends.setdefault(pin.purl, [])
        for name in pin.needed_by:
            parent = root if name == project else pins[name].purl if name in pins else None
            if parent is not None:
                depends.setdefault(parent, []).append(pin.purl)
    components = [
        {"type": "library", "bom-ref": pin.purl, "name": pin.name, "version": pin.version, "purl": pin.purl}
        for pin in sorted(pins.values(), key=lambda pin: pin.name)
    ]
    application = {"type": "application", "bom-ref": root, "name": project, "version": version, "purl": root,
                   "licenses": [{"license": {"id": "MIT"}}]}  # fmt: skip
    document: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "scripts/sbom.py", "version": version}]},
            "component": {
                "type": "container",
                "bom-ref": f"{IMAGE}:{version}",
                "name": IMAGE,
                "version": version,
                "components": [application],
            },
            "properties": [{"name": "entra-webhook:lock", "value": "requirements/runtime.txt"}],
        },
        "components": components,
        "dependencies": [{"ref": ref, "dependsOn": sorted(set(refs))} for ref, refs in sorted(depends.items())],
    }
    # The same lock and version give the same document, serial number included.
    document["serialNumber"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(document, sort_keys=True))}"
    return document


def release_time() -> datetime:
    """SOURCE_DATE_EPOCH when set (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)


def write(out: Path) -> Path:
    document = bom(in_image(read_lock(LOCK.read_text())), webhook.__version__, release_time())
    out.write_text(json.dumps(document, indent=2) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist" / f"{IMAGE}-{webhook.__version__}.cdx.json")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(write(args.out))


if __name__ == "__main__":
    main()
