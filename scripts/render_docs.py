"""Write the docs site's generated pages from the sources they describe, or check that they are current.

    python -m scripts.render_docs           write them (make docs)
    python -m scripts.render_docs --check   fail, with a diff, where a committed page differs (make lint)

Each generated page says at its top which source it comes from; edit that source, never the page.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from pathlib import Path

from scripts.reference import crds, keys, metrics, reasons, settings, values
from scripts.reference.markdown import page

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHART = ROOT / "charts" / "entra-webhook"


def changelog() -> str:
    """CHANGELOG.md stays at the top of the repository, where people look for it; the site shows a copy."""
    text = (ROOT / "CHANGELOG.md").read_text()
    title, _, rest = text.partition("\n")
    return page(title.removeprefix("# "), "CHANGELOG.md", rest)


# Each generated page, by its path under docs/, and what writes it.
PAGES: dict[str, Callable[[], str]] = {
    "reference/annotations.md": lambda: keys.render(ROOT),
    "reference/custom-resources.md": lambda: crds.render(CHART),
    "reference/helm-values.md": lambda: values.render(CHART),
    "reference/settings.md": settings.render,
    "reference/metrics.md": lambda: metrics.render(ROOT),
    "reference/reasons.md": lambda: reasons.render(ROOT),
    "changelog.md": changelog,
}


def stale() -> dict[str, str]:
    """The diff of each generated page that differs from what its source gives now."""
    found = {}
    for name, render in PAGES.items():
        path = DOCS / name
        old = path.read_text() if path.exists() else ""
        new = render()
        if old != new:
            lines = difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"docs/{name}", "rendered")
            found[name] = "".join(lines)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail where a committed page is not current")
    args = parser.parse_args(argv)
    if args.check:
        differing = stale()
        for diff in differing.values():
            sys.stderr.write(diff)
        if differing:
            names = ", ".join(f"docs/{name}" for name in differing)
            print(f"{names}: not what the sources give now; run `make docs` and commit the result", file=sys.stderr)
            return 1
        return 0
    for name, render in PAGES.items():
        path = DOCS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
