"""The JSON Patch writer: `add` ops encoded as they are written, counted by the writer itself.

A planner says which ops a Pod gets (`add`, `append`, or a run encoded once and cached, `extend`);
how they are encoded and joined is this module's business alone. `orjson` writes compact JSON with
no spaces, so a patch joined from parts is byte for byte `orjson.dumps(ops)` of the same ops, and
every path goes through the JSON encoder, so any path is escaped as JSON needs (a JSON Pointer's own
escapes, `~0` and `~1`, are `encoded.escape`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from webhook.core.encoded import kept, value

_ADD = b'{"op":"add","path":'
_VALUE = b',"value":'


@dataclass(frozen=True, slots=True)
class Ops:
    """Encoded ops joined by commas, and how many there are: a run a `Patch` takes whole."""

    encoded: bytes
    count: int

    def array(self) -> bytes:
        """The JSON Patch document: these ops as a JSON array."""
        return b"[" + self.encoded + b"]"

    def kept(self) -> Ops:
        """The same run in an object of its own size, for a cache (`encoded.kept`)."""
        return Ops(kept(self.encoded), self.count)


NO_OPS = Ops(b"", 0)


class Patch:
    """Collects ops in order; `ops()` is what was written, with its count."""

    __slots__ = ("_count", "_parts")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, path: str, encoded: bytes) -> Patch:
        """One op setting `path` to a value that is already JSON (`encoded.value`)."""
        self._parts.append(_ADD + value(path) + _VALUE + encoded + b"}")
        self._count += 1
        return self

    def append(self, path: str, items: Sequence[bytes]) -> Patch:
        """One op per item, each putting it at the end of the list at `path`, in order."""
        if items:
            head = _ADD + value(f"{path}/-") + _VALUE
            self._parts.append(head + (b"}," + head).join(items) + b"}")
            self._count += len(items)
        return self

    def extend(self, ops: Ops) -> Patch:
        """A run of ops encoded before (by another `Patch`), as they are."""
        if ops.count:
            self._parts.append(ops.encoded)
            self._count += ops.count
        return self

    def ops(self) -> Ops:
        return Ops(b",".join(self._parts), self._count)
