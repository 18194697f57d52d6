"""The bench's own pieces: what they check before they measure, and how they read what they measure."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import apiserver, large, profile, stages
from bench.pod import EXAMPLES
from webhook.core.decision import Inject, decide
from webhook.core.settings import Settings


def test_every_stage_runs_and_the_whole_path_answers_what_its_stages_answer() -> None:
    built = stages.build_stages()
    assert [stage.key for stage in built] == [
        "read", "bounds", "parse", "fields", "shape", "decide", "budget", "encode",
        "log", "metrics", "events", "response", "whole",
    ]  # fmt: skip
    for stage in built:
        stage.call()


def test_a_coroutine_that_waits_cannot_be_timed_without_a_loop() -> None:
    async def waits() -> None:
        import asyncio

        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="waited"):
        stages.run_now(waits())


def test_the_generated_configuration_holds_ten_identities_per_namespace_and_serves_each(tmp_path: Path) -> None:
    index, seconds = large.load(large.write_config(tmp_path, namespaces=3))
    large.check(index, namespaces=3)
    examples = large.load(EXAMPLES / "identities.yaml")[0].count("AgentIdentity")
    assert index.count("AgentIdentity") == 3 * large.IDENTITIES_PER_NAMESPACE + examples
    assert seconds >= 0
    typical = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}}
    for namespace, pod in large.pods(typical, namespaces=3):
        outcome = decide(pod, namespace, index, Settings())
        assert isinstance(outcome, Inject), outcome
        assert outcome.identity == pod["metadata"]["annotations"]["entra.io/agent-identity"]


def test_a_short_configuration_is_refused_by_the_check(tmp_path: Path) -> None:
    index, _ = large.load(large.write_config(tmp_path, namespaces=2))
    with pytest.raises(RuntimeError, match="identities"):
        large.check(index, namespaces=3)


def test_py_spy_raw_stacks_add_up_by_function_and_by_file() -> None:
    main = 'process 1:"entra-webhook serve";main (webhook/cli.py:10)'
    raw = "\n".join(
        [
            f"{main};mutate (webhook/injector/server.py:70);decide (webhook/core/decision.py:90) 3",
            f"{main};mutate (webhook/injector/server.py:71);decide (webhook/core/decision.py:95) 1",
            f"{main};send (uvicorn/protocols/http/httptools_impl.py:524) 4",
        ]
    )
    sampled = profile.parse(raw)
    assert sampled.samples == 8
    assert sampled.self_time["decide (webhook/core/decision.py)"] == 4
    assert sampled.by_file["uvicorn/protocols/http/httptools_impl.py"] == 4
    assert sampled.inclusive["mutate (webhook/injector/server.py)"] == 4
    assert sampled.inclusive["main (webhook/cli.py)"] == 8
    assert any("decide (webhook/core/decision.py)" in line for line in profile.lines(sampled))


def test_the_api_server_figures_are_differences_of_percentiles_of_the_same_run() -> None:
    result = {
        "version": "v1.36.3",
        "pods": 4,
        "warmup": 0,
        "seconds": {apiserver.ON: [0.004, 0.005, 0.006, 0.007], apiserver.OFF: [0.001, 0.002, 0.003, 0.004]},
    }
    figures = apiserver.summary(result)
    assert figures["with_p50_ms"] == pytest.approx(5.5)
    assert figures["without_p50_ms"] == pytest.approx(2.5)
    assert figures["added_p50_ms"] == pytest.approx(3.0)
    assert figures["added_median_of_pairs_ms"] == pytest.approx(3.0)
    assert "added" in "\n".join(apiserver.lines(result))


def test_the_api_server_bench_pod_names_the_example_identity() -> None:
    pod = apiserver.pod(7)
    assert pod["metadata"]["name"] == "sales-agent-7"
    assert pod["metadata"]["annotations"] == {"entra.io/agent-identity": "sales-agent"}
