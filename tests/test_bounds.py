"""The raw-bytes limits on a body: nesting depth and arrays plus objects, measured outside strings."""

from __future__ import annotations

import json

import pytest

from webhook.core.bounds import MAX_CONTAINERS, MAX_DEPTH, nests_deeper_than, problem, skeleton


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": [1, "]", {"b": None}]}, b"[[[]]]"),
        (["[", "{", '"[', "\\[", '\\"]'], b"[]"),
        ({"k\\": "v\\\\", "q": '"', "r": ["x"]}, b"[[]]"),
        ("just a string", b""),
        (3, b""),
    ],
)
def test_the_skeleton_keeps_only_brackets_outside_strings(value: object, expected: bytes) -> None:
    assert skeleton(json.dumps(value).encode()) == expected


@pytest.mark.parametrize("depth", [1, 2, 17, MAX_DEPTH - 1, MAX_DEPTH])
def test_nesting_up_to_the_limit_is_accepted(depth: int) -> None:
    assert problem(nested(depth)) is None
    assert problem(json.dumps({"x": json.loads(nested(depth - 1) or b"0")}).encode()) is None


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_nesting_past_the_limit_is_refused_however_deep(depth: int) -> None:
    assert problem(nested(depth)) == f"body nests JSON arrays and objects more than {MAX_DEPTH} deep"


def test_depth_is_found_behind_siblings_and_mixed_brackets() -> None:
    # Every level also holds an empty pair, so no run of MAX_DEPTH + 1 opening brackets appears in the raw text.
    value: object = []
    for _ in range(MAX_DEPTH):
        value = [[], {"k": value}]
    body = json.dumps(value).encode()
    assert b"[" * (MAX_DEPTH + 1) not in skeleton(body)
    assert problem(body) == f"body nests JSON arrays and objects more than {MAX_DEPTH} deep"


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"annotation": "[" * 10_000 + "{" * 10_000, "escaped": '\\"[[[[' * 1000}).encode()
    assert problem(body) is None


def test_too_many_arrays_and_objects_are_refused_even_when_flat() -> None:
    body = b"[" + b",".join([b"[]"] * MAX_CONTAINERS) + b"]"
    assert problem(body) == f"body holds {MAX_CONTAINERS + 1:,} JSON arrays and objects; the limit is 100,000"


def test_closing_brackets_alone_are_left_to_the_parser_to_explain() -> None:
    assert not nests_deeper_than(b"]" * 200, 2)
    assert problem(b"]" * 200) is None


@pytest.mark.parametrize("height", [MAX_DEPTH - 1, MAX_DEPTH])
def test_depth_is_exact_in_a_large_body_too(height: int) -> None:
    # Thousands of chains just under the limit, and one caterpillar (every level also holds a leaf) of `height`.
    chains = [nested(MAX_DEPTH - 1)] * 1500
    caterpillar = b"[[]," * (height - 1) + b"[]" + b"]" * (height - 1)
    body = b"[" + b",".join([*chains[:700], caterpillar, *chains[700:]]) + b"]"
    assert len(skeleton(body)) > 100_000
    too_deep = height + 1 > MAX_DEPTH  # the outer array adds one level
    assert (problem(body) is not None) is too_deep
