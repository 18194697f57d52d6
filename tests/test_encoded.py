"""Values joined from encoded parts are byte for byte the values encoded whole."""

from __future__ import annotations

import orjson

from webhook.core.encoded import array, decode, value


def test_a_list_joined_from_encoded_items_is_the_list_encoded_whole() -> None:
    ops = [{"op": "add", "path": "/a", "value": 1}, {"op": "add", "path": "/b", "value": None}]
    assert array(value(op) for op in ops) == orjson.dumps(ops)
    assert array([]) == b"[]"


def test_a_lone_surrogate_from_yaml_is_escaped_and_read_back() -> None:
    encoded = value({"name": "app\udc80"})
    assert encoded == b'{"name":"app\\udc80"}'
    assert decode(encoded) == {"name": "app\udc80"}
