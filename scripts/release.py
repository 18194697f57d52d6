"""The release artefacts, in dist/ (make release):

    entra-agent-webhook-<version>.oci.tar    the image (scripts/image-build.sh), an OCI archive
    entra-webhook-<version>.tgz              the chart (helm package), whose default image tag is <version>
    entra-agent-webhook-<version>.cdx.json   a CycloneDX SBOM of the image's Python packages (scripts/sbom.py)
    SHA256SUMS                               their sums (`sha256sum -c SHA256SUMS` checks them)

One version for all of them: webhook.__version__, which the chart's version and appVersion must match.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

import webhook
from scripts import sbom

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "entra-webhook"
DIST = REPO_ROOT / "dist"
IMAGE = "entra-agent-webhook"


def check_versions(version: str) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    found = {"Chart.yaml version": str(chart["version"]), "Chart.yaml appVersion": str(chart["appVersion"])}
    wrong = [f"{where} is {value}" for where, value in found.items() if value != version]
    if wrong:
        sys.exit(f"release: webhook.__version__ is {version} but {', '.join(wrong)}: make them agree")


def image_archive(version: str) -> Path:
    reference = subprocess.run([str(REPO_ROOT / "scripts" / "image-build.sh")], check=True, stdout=subprocess.PIPE,
                               text=True).stdout.split()[-1]  # fmt: skip
    archive = DIST / f"{IMAGE}-{version}.oci.tar"
    if reference != f"localhost/{IMAGE}:{version}" or not archive.is_file():
        sys.exit(f"release: scripts/image-build.sh built {reference}, not {archive.name}")
    return archive


def chart_package(helm: str, version: str) -> Path:
    """`helm package`, then its default render checked for the image this release ships."""
    subprocess.run([helm, "package", str(CHART), "--destination", str(DIST)], check=True, stdout=subprocess.DEVNULL)
    package = DIST / f"entra-webhook-{version}.tgz"
    rendered = subprocess.run([helm, "template", "entra-webhook", str(package)], check=True, capture_output=True,
                              text=True).stdout  # fmt: skip
    images = {line.split("image:", 1)[1].strip().strip("\"'") for line in rendered.splitlines()
              if line.strip().startswith("image:") and IMAGE in line}  # fmt: skip
    if images != {f"{IMAGE}:{version}"}:
        sys.exit(f"release: the chart's default image is {sorted(images)}, not {IMAGE}:{version}")
    return package


def write_sums(artefacts: list[Path]) -> Path:
    sums = DIST / "SHA256SUMS"
    lines = []
    for path in artefacts:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        lines.append(f"{digest.hexdigest()}  {path.name}\n")
    sums.write_text("".join(lines))
    return sums


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", required=True, help="the helm binary (make release passes the cached one)")
    args = parser.parse_args()
    version = webhook.__version__
    check_versions(version)
    DIST.mkdir(exist_ok=True)
    artefacts = [image_archive(version), chart_package(args.helm, version),
                 sbom.write(DIST / f"{IMAGE}-{version}.cdx.json")]  # fmt: skip
    sums = write_sums(artefacts)
    for path in [*artefacts, sums]:
        size = path.stat().st_size
        print(f"{path.relative_to(REPO_ROOT)}  " + (f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"))


if __name__ == "__main__":
    main()
