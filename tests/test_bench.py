"""The bench's own pieces: what they check before they measure, and how they read what they measure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonpatch
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
    seconds = {
        "plain": [0.001, 0.002, 0.003, 0.004],
        "shaped": [0.002, 0.003, 0.004, 0.005],
        "webhook": [0.004, 0.005, 0.006, 0.007],
        "fixed": [0.003, 0.004, 0.005, 0.006],
        "fixed-few": [0.003, 0.004, 0.005, 0.006],
        "fixed-bare": [0.0025, 0.0035, 0.0045, 0.0055],
    }
    calls = {
        "namespace.inject.entra.io": {"calls": 4.0, "seconds": 0.008},
        "many.fixed.bench": {"calls": 4.0, "seconds": 0.004},
        "few.fixed.bench": {"calls": 4.0, "seconds": 0.004},
        "bare.fixed.bench": {"calls": 4.0, "seconds": 0.004},
    }
    result = {
        "version": "v1.36.3",
        "pods": 4,
        "warmup": 0,
        "seconds": seconds,
        "api_server_calls": calls,
        "admissions": {"injected": 1.0},
        "webhook_micros": [100, 200, 300],
        "ops": {"ours": 10, "fewer": 4},
        "patch_bytes": {"ours": 3000, "fewer": 4000},
    }
    figures = apiserver.summary(result)
    assert figures["webhook_p50_ms"] == pytest.approx(5.5)
    assert figures["shaped_p50_ms"] == pytest.approx(3.5)
    assert figures["added_p50_ms"] == pytest.approx(2.0)
    assert figures["added_median_of_pairs_ms"] == pytest.approx(2.0)
    assert figures["bigger_pod_median_of_pairs_ms"] == pytest.approx(1.0)
    assert figures["creation_ratio_p50"] == pytest.approx(5.5 / 2.5)
    assert figures["conditions_median_of_pairs_ms"] == pytest.approx(0.5)
    assert figures["webhook_calls_per_pod"] == pytest.approx(1.0)
    assert figures["webhook_call_mean_ms"] == pytest.approx(2.0)
    assert figures["webhook_decide_p50_ms"] == pytest.approx(0.2)
    report = "\n".join(apiserver.lines(result))
    assert "admissions per injected Pod 1.0: MET (1.00)" in report
    assert "added p50 over the limit <= 2.0 ms: MET (2.00 ms)" in report
    assert "creation p50 within 1.6x no webhook: NOT MET (2.20x)" in report


def test_the_api_server_bench_pod_names_the_example_identity() -> None:
    pod = apiserver.pod(7)
    assert pod["metadata"]["name"] == "sales-agent-7"
    assert pod["metadata"]["annotations"] == {"entra.io/agent-identity": "sales-agent"}


def test_the_fewer_ops_patch_makes_the_same_pod_from_one_op_per_changed_member() -> None:
    seen = apiserver.pod(1)
    ops = apiserver.injection(seen, (1, 36)).ops
    few = apiserver.fewer_ops(seen, ops)
    assert [op["path"] for op in few] == [
        "/metadata/annotations",
        "/spec/containers",
        "/spec/volumes",
        "/spec/initContainers",
    ]
    assert jsonpatch.apply_patch(seen, few) == jsonpatch.apply_patch(seen, ops)


def test_two_creations_of_one_pod_normalize_alike_whatever_their_token_volume_s_suffix() -> None:
    def stored(suffix: str, name: str) -> dict[str, Any]:
        volume = f"kube-api-access-{suffix}"
        mount = {"name": volume, "mountPath": apiserver.SERVICE_ACCOUNT_PATH, "readOnly": True}
        return {
            "metadata": {"name": name, "uid": name, "labels": {"a": "b"}},
            "spec": {
                "containers": [{"name": "app", "volumeMounts": [mount]}],
                "volumes": [{"name": "z-ours", "emptyDir": {}}, {"name": volume, "projected": {}}],
            },
        }

    assert apiserver.normalized(stored("abcde", "one")) == apiserver.normalized(stored("fghij", "two"))
    other = stored("abcde", "one")
    other["spec"]["containers"][0]["volumeMounts"] = []
    assert apiserver.normalized(other) != apiserver.normalized(stored("abcde", "one"))


def test_admissions_are_counted_per_pod_of_the_webhook_namespace_by_reason() -> None:
    line = '{{"msg":"admission","namespace":"{ns}","pod":"{pod}","reason":"{reason}","micros":{micros}}}'
    log = "\n".join(
        [
            line.format(ns=apiserver.ON, pod="a", reason="injected", micros=100),
            line.format(ns=apiserver.ON, pod="a", reason="already-injected", micros=50),
            line.format(ns=apiserver.ON, pod="b", reason="injected", micros=120),
            line.format(ns="elsewhere", pod="c", reason="injected", micros=90),
            "not json",
        ]
    )
    assert apiserver.admissions(log) == {"injected": 1.0, "already-injected": 0.5}
    assert apiserver.admission_micros(log) == [100, 50, 120, 90]


def test_the_api_server_s_admission_steps_are_read_from_its_histograms() -> None:
    metric = "apiserver_admission_webhook_admission_duration_seconds"
    plugin = "apiserver_admission_controller_admission_duration_seconds"
    text = "\n".join(
        [
            "# HELP apiserver_admission_webhook_admission_duration_seconds ...",
            f'{metric}_bucket{{name="a.b.c",operation="CREATE",rejected="false",type="admit",le="0.005"}} 3',
            f'{metric}_sum{{name="a.b.c",operation="CREATE",rejected="false",type="admit"}} 0.006',
            f'{metric}_count{{name="a.b.c",operation="CREATE",rejected="false",type="admit"}} 3',
            f'{metric}_count{{name="a.b.c",operation="CREATE",rejected="true",type="admit"}} 1',
            f'{metric}_sum{{name="a.b.c",operation="CREATE",rejected="true",type="admit"}} 0.002',
            f'{metric}_count{{name="v.b.c",operation="CREATE",rejected="false",type="validate"}} 9',
            f'{plugin}_count{{name="ServiceAccount",operation="CREATE",rejected="false",type="admit"}} 6',
            f'{plugin}_sum{{name="ServiceAccount",operation="CREATE",rejected="false",type="admit"}} 0.0003',
        ]
    )
    steps = apiserver.admission_steps(text)
    assert sorted(steps) == ["a.b.c", "plugin:ServiceAccount"]
    assert steps["a.b.c"][0] == 4.0
    assert steps["a.b.c"][1] == pytest.approx(0.008)
    assert steps["plugin:ServiceAccount"][0] == 6.0
    assert steps["plugin:ServiceAccount"][1] == pytest.approx(0.0003)


def test_the_first_difference_of_two_pods_is_named_by_its_path() -> None:
    one = {"spec": {"containers": [{"name": "a", "env": [1]}], "x": 1}}
    assert apiserver.first_difference(one, one) is None
    other = {"spec": {"containers": [{"name": "a", "env": [2]}], "x": 1}}
    assert apiserver.first_difference(one, other) == "/spec/containers/0/env/0: 1 vs 2"
    assert apiserver.first_difference({"a": 1}, {}) == "/a: 1 vs null"


def test_the_baseline_server_keeps_connections_alive_as_long_as_ours() -> None:
    from bench import baseline_server
    from webhook.injector import server

    assert baseline_server.KEEP_ALIVE_SECONDS == server.KEEP_ALIVE_SECONDS
