"""The patch writer: what it writes is byte for byte the ops encoded whole, and it counts them."""

from __future__ import annotations

from typing import Any

import jsonpatch
import orjson

from webhook.core.encoded import value
from webhook.core.patch import Ops, Patch


def test_an_add_op_is_the_op_encoded_whole() -> None:
    path, item = "/metadata/annotations/entra.io~1status", {"a": [1, "é"]}
    patch = Patch().add(path, value(item))
    assert patch.document() == orjson.dumps([{"op": "add", "path": path, "value": item}])
    assert patch.op_count == 1


def test_appended_items_are_one_op_each_at_the_end_of_the_list_in_order() -> None:
    items = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    patch = Patch().append("/spec/containers/1/env", [value(item) for item in items])
    expected = [{"op": "add", "path": "/spec/containers/1/env/-", "value": item} for item in items]
    assert patch.document() == orjson.dumps(expected)
    assert patch.op_count == 2


def test_appending_nothing_writes_no_op() -> None:
    patch = Patch().append("/spec/volumes", [])
    assert (patch.document(), patch.op_count) == (b"[]", 0)


def test_a_run_written_before_is_taken_whole_and_counted_with_the_rest() -> None:
    run = Patch().append("/spec/volumes", [value({"name": "a"}), value({"name": "b"})]).ops().kept()
    patch = (
        Patch().add("/metadata/labels", value({"x": "y"})).extend(run).extend(Ops(b"", 0)).add("/spec/hostname", b'"h"')
    )
    ops = orjson.loads(patch.document())
    assert [op["path"] for op in ops] == ["/metadata/labels", "/spec/volumes/-", "/spec/volumes/-", "/spec/hostname"]
    assert patch.op_count == patch.ops().op_count == 4


def test_a_path_needing_json_escapes_is_escaped() -> None:
    """Paths go through the JSON encoder: a quote or a backslash in one cannot break the patch."""
    key = 'odd"key\\with/parts'
    pointer = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
    patch = Patch().add(pointer, value("v")).append("/spec/list", [value(1)])
    document: dict[str, Any] = {"metadata": {"annotations": {}}, "spec": {"list": []}}
    patched = jsonpatch.apply_patch(document, orjson.loads(patch.document()))
    assert patched == {"metadata": {"annotations": {key: "v"}}, "spec": {"list": [1]}}
