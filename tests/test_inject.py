"""JSON Pointer escaping of annotation keys (RFC 6901)."""

from __future__ import annotations

from typing import Any

import jsonpatch

from webhook.core.encoded import escape


def test_tilde_is_escaped_before_slash() -> None:
    assert escape("entra.io/status") == "entra.io~1status"
    assert escape("a~1/b") == "a~01~1b"


def test_an_escaped_key_adds_exactly_that_key() -> None:
    pod: dict[str, Any] = {"metadata": {"annotations": {}}}
    key = "odd~key/with~1parts"
    patched = jsonpatch.apply_patch(pod, [{"op": "add", "path": f"/metadata/annotations/{escape(key)}", "value": "v"}])
    assert patched["metadata"]["annotations"] == {key: "v"}
