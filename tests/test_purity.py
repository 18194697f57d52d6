"""The mutation core imports neither the HTTP stack nor the Kubernetes client (import-linter checks it too)."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "webhook.core.decision",
    "webhook.core.review",
    "webhook.core.workloads",
    "webhook.core.documents",
    "webhook.core.bounds",
]
SHELL_ONLY = {"starlette", "uvicorn", "kubernetes", "httpx", "prometheus_client"}


def test_importing_the_core_loads_no_shell_library() -> None:
    code = f"import sys, {', '.join(CORE)}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert loaded & SHELL_ONLY == set()
    assert "webhook" in loaded
