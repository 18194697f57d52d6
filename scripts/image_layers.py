"""The size of what an image adds on top of its base, read from its OCI archive.

    python3 scripts/image_layers.py ARCHIVE BASE_LAYERS [BUDGET_MB]

Prints the layers above the first BASE_LAYERS: each one's compressed size (what a registry stores and a
node pulls) and uncompressed size (what the node unpacks), and their sum; exits 1 when the uncompressed
sum is over BUDGET_MB. Standard library only, so it runs before the venv exists.
"""

from __future__ import annotations

import gzip
import json
import sys
import tarfile
from typing import IO, Any

MB = 1e6


def blob(archive: tarfile.TarFile, digest: str) -> IO[bytes]:
    member = archive.extractfile("blobs/" + digest.replace(":", "/"))
    assert member is not None, f"{digest} is not in the archive"
    return member


def document(archive: tarfile.TarFile, digest: str) -> Any:
    return json.load(blob(archive, digest))


def unpacked(archive: tarfile.TarFile, layer: dict[str, Any]) -> int:
    stream = blob(archive, layer["digest"])
    if layer["mediaType"].endswith("gzip"):
        stream = gzip.GzipFile(fileobj=stream)  # type: ignore[assignment]
    total = 0
    while chunk := stream.read(1 << 20):
        total += len(chunk)
    return total


def main(path: str, base_layers: int, budget_mb: float | None) -> int:
    with tarfile.open(path) as archive:
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
        manifest = document(archive, index["manifests"][0]["digest"])
        added = manifest["layers"][base_layers:]
        sizes = [(layer["size"], unpacked(archive, layer)) for layer in added]
    for number, (packed, size) in enumerate(sizes, base_layers + 1):
        print(f"  layer {number}: {size / MB:.1f} MB ({packed / MB:.1f} MB compressed)")
    total = sum(size for _, size in sizes)
    print(f"on top of the base: {total / MB:.1f} MB in {len(sizes)} layer(s), "
          f"{sum(packed for packed, _ in sizes) / MB:.1f} MB compressed")  # fmt: skip
    if budget_mb is not None and total > budget_mb * MB:
        print(f"over the budget of {budget_mb:g} MB: measure what grew (docs/operations/image-and-release.md); "
              "raise IMAGE_BUDGET_MB only on purpose")  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else None))
