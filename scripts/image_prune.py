"""What the image leaves out of the locked tree: parts that neither process ever imports, measured.

Run in the Dockerfile's builder stage by the base's Python, on the venv: `python image_prune.py /opt/venv SRC`.

1. `kubernetes.aio`, the client's asyncio twin (68 MB with its byte-code, a third of the venv), and the
   aiohttp stack that only it needs: both processes use the synchronous client.
2. The byte-code of the Kubernetes API modules that the webhook never names (`client.CoreV1Api` and the
   like, read from SRC) and that importing every webhook module does not load: the generated client loads
   an API module only when its class is first used. Should one be imported after all, Python compiles it
   in memory: slower the first time, never broken.
3. The tests the kubernetes package ships.

Every webhook module is imported from the pruned venv before and after, so a prune that removed
something needed fails the build. Prints what each step saved.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ASYNC_ONLY = ["aiohttp", "aiohttp-retry", "aiohappyeyeballs", "aiosignal", "attrs", "frozenlist", "multidict",
              "propcache", "yarl"]  # fmt: skip
API_CLASS = re.compile(r"\bclient\.([A-Z][A-Za-z0-9]*Api)\b")
# Imports every webhook module and prints the file of every module then loaded.
LOADED = """
import importlib, pkgutil, sys, webhook
for found in pkgutil.walk_packages(webhook.__path__, "webhook."):
    importlib.import_module(found.name)
print("\\n".join(sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})))
"""


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def loaded(python: Path) -> set[Path]:
    result = subprocess.run([str(python), "-c", LOADED], check=True, capture_output=True, text=True)
    return {Path(line).resolve() for line in result.stdout.splitlines()}


def module_of(api_class: str) -> str:
    """`CoreV1Api` -> `core_v1_api`, the generated client's module naming."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", api_class).lower()


def main(venv: Path, sources: Path) -> None:
    python = venv / "bin" / "python"
    site = next((venv / "lib").glob("python3*/site-packages"))
    kubernetes = site / "kubernetes"
    before = size(venv)
    loaded(python)  # the venv imports as installed

    shutil.rmtree(kubernetes / "aio")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "uninstall", "--yes", "--quiet",
                    *ASYNC_ONLY], check=True)  # fmt: skip
    after_async = size(venv)

    named = {module_of(name) for path in sources.rglob("*.py") for name in API_CLASS.findall(path.read_text())}
    apis = kubernetes / "client" / "api"
    missing = sorted(name for name in named if not (apis / f"{name}.py").exists())
    if missing:
        raise SystemExit(f"image_prune: no kubernetes.client.api module for {missing}: fix module_of()")
    keep = named | {path.stem for path in loaded(python) if path.parent == apis}
    for compiled in (apis / "__pycache__").glob("*.pyc"):
        if compiled.name.split(".")[0] not in keep:
            compiled.unlink()
    after_apis = size(venv)

    for test in [*kubernetes.rglob("*_test.py"), *kubernetes.rglob("test_*.py")]:
        test.unlink()
        for compiled in (test.parent / "__pycache__").glob(f"{test.stem}.*.pyc"):
            compiled.unlink()
    after = size(venv)

    loaded(python)  # and still does
    mb = 1e6
    print(f"image_prune: venv {before / mb:.1f} MB -> {after / mb:.1f} MB: kubernetes.aio and "
          f"{', '.join(ASYNC_ONLY)} -{(before - after_async) / mb:.1f} MB; byte-code of the API modules "
          f"the webhook never names (kept: {', '.join(sorted(keep))}) -{(after_async - after_apis) / mb:.1f} MB; "
          f"kubernetes' tests -{(after_apis - after) / mb:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
