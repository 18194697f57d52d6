"""JSON values as bytes, so a patch is joined from values encoded once (`webhook.core.patch`).

`orjson` writes compact JSON with no spaces, so `b"[" + b",".join(map(dumps, items)) + b"]"` is
byte for byte `dumps(items)`: values encoded once per configuration and values encoded per Pod
make the same patch as encoding it whole. Bytes are immutable, so a cached value is never changed
by whoever reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson


def escape(token: str) -> str:
    """RFC 6901: `~` first, then `/`, so `entra.io/status` becomes `entra.io~1status`."""
    return token.replace("~", "~0").replace("/", "~1")


def value(item: Any) -> bytes:
    """`item` as compact JSON. A lone surrogate (only from YAML: an API server sends UTF-8) is
    written as a `\\udcXX` escape, which JSON allows and orjson refuses."""
    try:
        return orjson.dumps(item)
    except TypeError:
        return json.dumps(item, separators=(",", ":")).encode()


def array(items: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def kept(encoded: bytes) -> bytes:
    """`encoded` in an object of its own size, for what is kept: orjson writes into a 4 KiB buffer
    and a short result may keep all of it (10,000 cached env items held 120 MiB)."""
    return bytes(memoryview(encoded))


def decode(encoded: bytes) -> Any:
    """Fresh Python objects from encoded JSON: what a caller may change freely."""
    try:
        return orjson.loads(encoded)
    except orjson.JSONDecodeError:  # the escapes `value` wrote for a lone surrogate
        return json.loads(encoded)
