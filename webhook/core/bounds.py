"""What an untrusted JSON body may cost, checked on its raw bytes before anything parses it.

Parsing builds one Python object per JSON value, on the event loop: a 3 MiB body of nested
arrays costs seconds of CPU while every other request waits, and values nested a thousand deep
break whatever recurses over them later. So the body's skeleton (its brackets outside strings)
is measured first, with a handful of C-speed byte operations and no recursion: how deep it nests
and how many arrays and objects it holds. A real Pod nests about 20 deep and holds a few hundred.
"""

from __future__ import annotations

import re

MAX_DEPTH = 64
MAX_CONTAINERS = 100_000  # arrays plus objects: a Pod with 20 containers of 100 env vars each has ~5,000

_FOLD = bytes.maketrans(b"{}", b"[]")
_NOT_SKELETON = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')
_RUNS = re.compile(rb"\[+|\]+")
_OPEN = ord("[")
_PASSES = 6  # before walking a skeleton larger than _SMALL bytes
_SMALL = 4096


def skeleton(body: bytes) -> bytes:
    """The brackets of `body` outside strings, objects folded into arrays: `{"a":[1,"]"]}` -> `[[]]`.

    Exact for valid JSON. Escapes go first, so every quote left delimits a string; quotes then
    alternate open and close, and removing strings pairs them from the left.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = body.translate(_FOLD, _NOT_SKELETON)
    quotes = brackets.count(b'"')
    if quotes == 2 * brackets.count(b'""'):
        # Every string's quotes are adjacent, so no string holds a bracket (the usual case): drop them.
        return brackets.translate(None, b'"')
    return _STRING.sub(b"", brackets)


def nests_deeper_than(brackets: bytes, limit: int) -> bool:
    """Whether a skeleton nests more than `limit` deep.

    Each pass removes the innermost pairs, so the skeleton's height drops by one: a typical Pod's
    is gone in about 15 passes of a few hundred bytes. A large one gets a few passes, then a walk
    over what is left that takes the depth at each run of `[` or `]`, one step per run.
    """
    if len(brackets) <= 2 * limit:
        return False
    if b"[" * (limit + 1) in brackets:
        return True
    passes = 0
    while brackets and passes < limit and (passes < _PASSES or len(brackets) <= _SMALL):
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) == len(brackets):
            return False  # unbalanced: not JSON, and the parser will say where
        brackets, passes = reduced, passes + 1
        if len(brackets) <= 2 * (limit - passes):
            return False  # what is left cannot nest deeper than half its length: a typical Pod stops here
    depth = 0
    for run in _RUNS.findall(brackets):
        depth += len(run) if run[0] == _OPEN else -len(run)
        if depth > limit - passes:
            return True
    return False


def problem(body: bytes) -> str | None:
    """Why `body` is too costly to parse, or None; costs a few microseconds for a typical review."""
    brackets = skeleton(body)
    containers = brackets.count(b"[")
    if containers > MAX_CONTAINERS:
        return f"body holds {containers:,} JSON arrays and objects; the limit is {MAX_CONTAINERS:,}"
    if nests_deeper_than(brackets, MAX_DEPTH):
        return f"body nests JSON arrays and objects more than {MAX_DEPTH} deep"
    return None
