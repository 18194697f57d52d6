"""Ops joined from encoded parts are byte for byte the ops encoded whole."""

from __future__ import annotations

import orjson

from webhook.core.encoded import add, appended, array, decode, opened, start, value


def test_an_add_op_from_parts_is_the_op_encoded_whole() -> None:
    path, item = "/metadata/annotations/entra.io~1status", {"a": [1, "é"]}
    op = {"op": "add", "path": path, "value": item}
    assert add(path, value(item)) == orjson.dumps(op)
    assert start(path) + value(item) + b"}" == orjson.dumps(op)


def test_an_append_op_from_an_opened_path_and_a_tail_is_the_op_encoded_whole() -> None:
    item = {"name": "SIDECAR_URL", "value": "http://localhost:5000"}
    op = {"op": "add", "path": "/spec/containers/1/env/-", "value": item}
    assert opened("/spec/containers/1/env") + appended(value(item)) == orjson.dumps(op)


def test_a_patch_joined_from_ops_is_the_list_encoded_whole() -> None:
    ops = [{"op": "add", "path": "/a", "value": 1}, {"op": "add", "path": "/b", "value": None}]
    assert array(value(op) for op in ops) == orjson.dumps(ops)
    assert array([]) == b"[]"


def test_a_lone_surrogate_from_yaml_is_escaped_and_read_back() -> None:
    encoded = value({"name": "app\udc80"})
    assert encoded == b'{"name":"app\\udc80"}'
    assert decode(encoded) == {"name": "app\udc80"}
