"""JSON values and JSON Patch `add` ops as bytes, so a patch is joined from parts encoded once.

`orjson` writes compact JSON with no spaces, so `b"[" + b",".join(map(dumps, ops)) + b"]"` is
byte for byte `dumps(ops)`: parts encoded once per configuration and parts encoded per Pod make
the same patch as encoding it whole. Bytes are immutable, so a cached part is never changed by
whoever reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

_ADD = b'{"op":"add","path":'
_VALUE = b',"value":'
_OPENED = _ADD + b'"'


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


def add(path: str, encoded: bytes) -> bytes:
    """One `add` op whose value is already JSON."""
    return _ADD + orjson.dumps(path) + _VALUE + encoded + b"}"


def start(path: str) -> bytes:
    """An add op up to its value, for a path used again and again: `start(p) + value + b"}"`."""
    return _ADD + orjson.dumps(path) + _VALUE


def opened(path: str) -> bytes:
    """An add op up to its path, left open for an `appended` tail: `{"op":"add","path":"PATH`.
    Only for our own paths (ASCII, no quote or backslash to escape)."""
    return _OPENED + path.encode()


def appended(encoded: bytes) -> bytes:
    """The rest of an op that appends `encoded` to the list at an `opened` path: `/-","value":...}`."""
    return b'/-"' + _VALUE + encoded + b"}"


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
