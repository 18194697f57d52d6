"""Properties of `decide` over generated Pods, well-typed and hostile (hypothesis).

Whatever the Pod: `decide` returns, its patch applies, no `add` lands on a present value, deciding
the patched Pod again adds nothing, and every message is bounded and names the Pod. On well-typed
Pods the patch also only adds: everything the Pod had is still there, in order.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from tests.fuzz import budget, count
from tests.podchecks import assert_only_added, overwritten
from tests.strategies import NAMESPACES, VERSIONS, hostile_pods, json_values, pods, yaml_values
from webhook.core.decision import Deny, Inject, Outcome, Skip, decide
from webhook.core.settings import Settings
from webhook.injector.sources.files import FileSource

MESSAGE_LIMIT = 2048
CONFIG = FileSource([FIXTURES / "config.yaml"]).load()  # not a fixture: hypothesis would print it with each example
SETTINGS = [Settings(), Settings(mode="native"), Settings(mode="container", sidecar_port=5001)]

settings_ = st.sampled_from(SETTINGS)
versions = st.sampled_from(VERSIONS)
namespaces = st.sampled_from([*NAMESPACES, "", "n" * 100_000])


def expected_subject(pod: Any, namespace: str) -> str:
    """How the message must begin, worked out here without the webhook's own helpers."""
    metadata = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
    name, prefix = metadata.get("name"), metadata.get("generateName")
    shown = ""
    if isinstance(name, str) and name:
        shown = name if len(name) <= 253 else name[:253] + "…"
    elif isinstance(prefix, str) and prefix:
        shown = (prefix if len(prefix) <= 253 else prefix[:253] + "…") + "*"
    where = f'in namespace "{namespace if len(namespace) <= 253 else namespace[:253] + "…"}"'
    return f'pod "{shown}" {where}: ' if shown else f"pod {where}: "


def check(pod: Any, namespace: str, settings: Settings, version: Any, well_typed: bool) -> Outcome:
    config = CONFIG
    before = copy.deepcopy(pod)
    outcome = decide(pod, namespace, config, settings, version)
    assert pod == before, "decide changed its input"
    subject = expected_subject(pod, namespace)
    messages = outcome.warnings if isinstance(outcome, Inject | Skip) else []
    messages += [outcome.message] if isinstance(outcome, Skip | Deny) else []
    for message in messages:
        assert message.startswith(subject), message[:300]
        assert len(message) <= MESSAGE_LIMIT, len(message)
        assert "internal error" not in message
    if isinstance(outcome, Inject):
        assert outcome.ops, "an Inject carries ops"
        assert outcome.op_count == len(outcome.ops), "the count the log and the reply go by"
        assert overwritten(pod, outcome.ops) == []
        patched = jsonpatch.apply_patch(pod, outcome.ops)
        if well_typed:
            assert_only_added(pod, patched)
        again = decide(patched, namespace, config, settings, version)
        assert isinstance(again, Skip), again
        assert again.reason == "already-injected"
        count(f"core, {'well-typed' if well_typed else 'hostile'}: injected, patch applied and re-decided")
    count(f"core, {'well-typed' if well_typed else 'hostile'}: {type(outcome).__name__} ({outcome.reason})")
    return outcome


@budget(quick=300, long=30_000)
@given(pods(), namespaces, settings_, versions)
def test_decide_on_well_typed_pods(pod: Any, namespace: str, settings: Settings, version: Any) -> None:
    count("core, well-typed: pods")
    check(pod, namespace, settings, version, well_typed=True)


@budget(quick=300, long=30_000)
@given(hostile_pods(json_values | yaml_values), namespaces, settings_, versions)
def test_decide_on_hostile_pods(pod: Any, namespace: str, settings: Settings, version: Any) -> None:
    count("core, hostile: pods")
    check(pod, namespace, settings, version, well_typed=False)
