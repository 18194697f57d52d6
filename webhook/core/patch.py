"""The JSON Patch writer: `add` ops encoded as they are written, counted by the writer itself.

A planner says which ops a Pod gets (`add`, `append`, or a run encoded once and cached, `extend`);
how they are encoded and joined is this module's business alone. `orjson` writes compact JSON with
no spaces, so a patch joined from parts is byte for byte `orjson.dumps(ops)` of the same ops, and
every path goes through the JSON encoder, so any path is escaped as JSON needs (a JSON Pointer's own
escapes, `~0` and `~1`, are `encoded.escape`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from webhook.core.encoded import kept, value

_ADD = b'{"op":"add","path":'
_VALUE = b',"value":'


class Ops(NamedTuple):
    """Encoded ops joined by commas, and how many there are: a run a `Patch` takes whole."""

    encoded: bytes
    op_count: int

    def kept(self) -> Ops:
        """The same run in an object of its own size, for a cache (`encoded.kept`)."""
        return Ops(kept(self.encoded), self.op_count)


class Patch:
    """Collects ops in order: `document()` is the JSON Patch, `op_count` how many ops it holds."""

    __slots__ = ("_parts", "op_count")

    def __init__(self) -> None:
        self._parts: list[bytes] = []  # encoded ops, or runs of them
        self.op_count = 0  # counted here, by every method that writes

    def add(self, path: str, encoded: bytes) -> Patch:
        """One op setting `path` to a value that is already JSON (`encoded.value`)."""
        self._parts.append(_head(path) + encoded + b"}")
        self.op_count += 1
        return self

    def append(self, path: str, items: Sequence[bytes]) -> Patch:
        """One op per item, each putting it at the end of the list at `path`, in order."""
        if items:
            head, between = _append_heads(path)
            self._parts.append(head + between.join(items) + b"}")
            self.op_count += len(items)
        return self

    def extend(self, ops: Ops) -> Patch:
        """A run of ops encoded before (by another `Patch`), as they are."""
        if ops.op_count:
            self._parts.append(ops.encoded)
            self.op_count += ops.op_count
        return self

    def document(self) -> bytes:
        """The ops as a JSON array: what an AdmissionReview carries (base64-encoded)."""
        return b"".join((b"[", b",".join(self._parts), b"]"))

    def ops(self) -> Ops:
        """The ops as a run another `Patch` can take whole."""
        return Ops(b",".join(self._parts), self.op_count)


# Remembered: a Pod's paths (its env lists, an annotation) repeat from Pod to Pod, and encoding one
# costs more than finding it. Bounded; a path is only ever a key.
@lru_cache(maxsize=1024)
def _head(path: str) -> bytes:
    """An op up to its value: `{"op":"add","path":PATH,"value":`."""
    return _ADD + value(path) + _VALUE


@lru_cache(maxsize=1024)
def _append_heads(path: str) -> tuple[bytes, bytes]:
    """The head of an op appending to the list at `path`, and what goes between two such items."""
    head = _head(f"{path}/-")
    return head, b"}," + head
