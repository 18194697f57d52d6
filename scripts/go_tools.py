"""Binaries built from the pinned Go modules under scripts/build/, once, by scripts/go-tools-build.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
BUILD_SCRIPT = SCRIPTS / "go-tools-build.sh"


def go_tools(*modules: str) -> Path:
    """The cache directory holding the tools of `modules` (names under scripts/build/), built if missing.

    The build's progress goes to this process's stderr.
    """
    command = ["bash", str(BUILD_SCRIPT), *(str(SCRIPTS / "build" / module) for module in modules)]
    result = subprocess.run(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, check=True)
    return Path(result.stdout.strip().splitlines()[-1])
