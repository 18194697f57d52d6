"""Pods no API server would send, and Pods at Kubernetes' limits: the exact outcome and message of each.

Every case here is a failure once seen (issue 10, or the fuzz suite in tests/test_fuzz_core.py):
each now gets a denial that names the Pod and the field, or an injection the API server accepts.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import jsonpatch
import pytest

from webhook.core.budget import ANNOTATIONS_LIMIT
from webhook.core.decision import Deny, Inject, Skip, decide
from webhook.core.index import ConfigIndex
from webhook.core.settings import Settings

WHO = 'pod "web-7d9c" in namespace "agents"'
IDENTITY = {"entra.io/agent-identity": "sales-agent"}


def pod(annotations: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "web-7d9c",
        "annotations": dict(IDENTITY if annotations is None else annotations),
    }
    return {"metadata": metadata, "spec": {"containers": [{"name": "app", "image": "agent:1"}], **spec}}


def decided(
    config: ConfigIndex, subject: dict[str, Any], version: tuple[int, int] | None = None, **settings: Any
) -> Any:
    return decide(copy.deepcopy(subject), "agents", config, Settings(**settings), version)


def injected(config: ConfigIndex, subject: dict[str, Any], **settings: Any) -> Inject:
    outcome = decided(config, subject, **settings)
    assert isinstance(outcome, Inject), outcome
    return outcome


def malformed(config: ConfigIndex, subject: dict[str, Any]) -> str:
    outcome = decided(config, subject)
    assert isinstance(outcome, Deny), outcome
    assert (outcome.reason, outcome.code) == ("malformed-pod", 400)
    assert outcome.message.endswith(", which Kubernetes refuses too: correct it")
    return outcome.message.removesuffix(", which Kubernetes refuses too: correct it")


def with_own_sidecar(urls: str) -> dict[str, Any]:
    """A Pod that already has the sidecar, with `urls` as its ASPNETCORE_URLS, and an app added since."""
    subject = pod()
    sidecar = {"name": "entra-sidecar", "image": "sidecar:1", "env": [{"name": "ASPNETCORE_URLS", "value": urls}]}
    subject["spec"]["containers"] = [sidecar, {"name": "late", "image": "late:1"}]
    return subject


def sidecar_url(outcome: Inject) -> str:
    env = next(op["value"] for op in outcome.ops if op["path"] == "/spec/containers/1/env")
    return str(next(item["value"] for item in env if item["name"] == "SIDECAR_URL"))


# -- 2. ports that str.isdigit() accepts and int() refuses ------------------------------------------------


@pytest.mark.parametrize(
    "urls",
    [
        "http://+:5²",
        "http://+:\u0665\u0660\u0660\u0660",  # Arabic-Indic digits
        "http://+:" + "9" * 5000,
        "http://+:",
        "http://+:0",
        "http://+:70000",
        "nonsense",
    ],
)
def test_an_existing_sidecar_whose_port_cannot_be_read_still_gets_its_app_env_with_a_warning(
    config: ConfigIndex, urls: str
) -> None:
    outcome = injected(config, with_own_sidecar(urls))
    assert outcome.reason == "reinvoked"
    assert sidecar_url(outcome) == "http://localhost:5000"
    shown = repr(urls if len(urls) <= 64 else urls[:64] + "…")
    assert outcome.warnings == [
        f"{WHO}: entra-sidecar has ASPNETCORE_URLS={shown}, which names no port from 1 to 65535: the app env points "
        "at port 5000; fix its ASPNETCORE_URLS (e.g. http://+:5000)"
    ]


@pytest.mark.parametrize(
    ("urls", "port"),
    [
        ("http://+:6000", 6000),
        ("http://localhost:6001/", 6001),
        ("http://+:6002;https://+:6443", 6002),
        ("garbage;http://[::1]:6003", 6003),
    ],
)
def test_an_existing_sidecar_s_readable_port_is_what_the_app_env_points_at(
    config: ConfigIndex, urls: str, port: int
) -> None:
    outcome = injected(config, with_own_sidecar(urls))
    assert sidecar_url(outcome) == f"http://localhost:{port}"
    assert outcome.warnings == []


# -- 2. wrong JSON types where the core reads (unhashable names and policies) -----------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda p: p["spec"]["containers"][0].update(env=[{"name": ["A"], "value": "x"}]),
            "spec.containers[0].env[0].name must be a string, got an array",
        ),
        (lambda p: p["spec"].update(restartPolicy=["Never"]), "spec.restartPolicy must be a string, got an array"),
        (
            lambda p: p["spec"]["containers"][0].update(name={"n": 1}),
            "spec.containers[0].name must be a string, got an object",
        ),
        (lambda p: p["spec"].update(containers={"app": {}}), "spec.containers must be an array, got an object"),
        (lambda p: p["spec"]["containers"].append("sidecar"), "spec.containers[1] must be an object, got a string"),
        (
            lambda p: p["spec"].update(initContainers=[{"name": "i", "env": {"A": "b"}}]),
            "spec.initContainers[0].env must be an array, got an object",
        ),
        (lambda p: p["spec"].update(volumes=[{"name": 7}]), "spec.volumes[0].name must be a string, got a number"),
        (lambda p: p["spec"].update(volumes={"tmp": {}}), "spec.volumes must be an array, got an object"),
        (
            lambda p: p["spec"].update(serviceAccountName=["sa"]),
            "spec.serviceAccountName must be a string, got an array",
        ),
        (lambda p: p["spec"].update(hostNetwork="true"), "spec.hostNetwork must be a boolean, got a string"),
        (lambda p: p.update(spec=[]), "spec must be an object, got an array"),
        (
            lambda p: p["metadata"].update(annotations=[IDENTITY]),
            "metadata.annotations must be an object of strings, got an array",
        ),
        (
            lambda p: p["metadata"]["annotations"].update({"entra.io/sidecar-port": 5001}),
            'metadata.annotations["entra.io/sidecar-port"] must be a string (quote it in YAML), got a number',
        ),
        (
            lambda p: p["metadata"].update(labels={"entra.io/inject": False}),
            'metadata.labels["entra.io/inject"] must be a string (quote it in YAML), got a boolean',
        ),
    ],
)
def test_a_field_the_core_reads_with_the_wrong_json_type_is_denied_naming_the_field(
    config: ConfigIndex, change: Any, problem: str
) -> None:
    subject = pod()
    change(subject)
    assert malformed(config, subject) == f"{WHO}: {problem}"


@pytest.mark.parametrize(("key", "got"), [(1, "a number"), (True, "a boolean"), (None, "null")])
def test_a_yaml_annotation_key_that_is_not_a_string_is_denied(config: ConfigIndex, key: Any, got: str) -> None:
    # YAML reads `1:`, `yes:` and `~:` as a number, a boolean and null; counting the budget once raised on them.
    subject = pod()
    subject["metadata"]["annotations"][key] = "x"
    assert malformed(config, subject) == (
        f"{WHO}: metadata.annotations has a key of another type than string: {got} (quote it in YAML)"
    )


def test_a_yaml_date_where_a_string_belongs_is_named_as_such(config: ConfigIndex) -> None:
    subject = pod()
    subject["metadata"]["annotations"]["example.com/released"] = dt.date(2024, 1, 1)
    assert malformed(config, subject) == (
        f'{WHO}: metadata.annotations["example.com/released"] must be a string (quote it in YAML), got a date'
    )


def test_a_wrong_typed_name_still_names_the_pod_as_well_as_it_can(config: ConfigIndex) -> None:
    subject = pod()
    subject["metadata"]["name"] = [[["web"]]]
    subject["metadata"]["generateName"] = "web-"
    assert (
        malformed(config, subject) == 'pod "web-*" in namespace "agents": metadata.name must be a string, got an array'
    )
    subject["metadata"] = "web"
    assert malformed(config, subject) == 'pod in namespace "agents": metadata must be an object, got a string'


# -- 5. null is absent (as in Kubernetes' decoder); an add over it is no replacement ------------------------


def test_null_annotations_and_labels_read_as_absent_and_the_patch_sets_them(config: ConfigIndex) -> None:
    subject = pod(serviceAccountName="sales-agent")  # bound to sales-agent: no annotation needed
    subject["metadata"].update(annotations=None, labels=None)
    outcome = injected(config, subject)
    assert outcome.ops[0]["path"] == "/metadata/annotations"
    assert jsonpatch.apply_patch(subject, outcome.ops)["metadata"]["annotations"] == outcome.ops[0]["value"]


def test_null_env_volumes_and_init_containers_are_created_by_the_patch(config: ConfigIndex) -> None:
    subject = pod(volumes=None, initContainers=None)
    subject["spec"]["containers"][0]["env"] = None
    outcome = injected(config, subject)
    patched = jsonpatch.apply_patch(subject, outcome.ops)
    assert [volume["name"] for volume in patched["spec"]["volumes"]] == [
        "entra-sidecar-tmp",
        "entra-sidecar-keys",
        "entra-sidecar-no-api-token",
        "entra-identity-token",
    ]
    assert [item["name"] for item in patched["spec"]["containers"][1]["env"]] == [
        "SIDECAR_URL",
        "BLUEPRINT_APP_ID",
        "AGENT_IDENTITY_APP_ID",
    ]
    assert patched["spec"]["initContainers"] is None  # container mode: left as it was


def test_a_native_sidecar_goes_into_an_empty_init_container_list_without_replacing_it(config: ConfigIndex) -> None:
    # Found by the fuzz suite: `add /spec/initContainers` replaced the present (empty) list.
    subject = pod({**IDENTITY, "entra.io/sidecar-mode": "native"}, initContainers=[])
    outcome = decided(config, subject, (1, 29))
    assert isinstance(outcome, Inject)
    assert [op["path"] for op in outcome.ops if "ontainers" in op["path"]] == [
        "/spec/initContainers/0",
        "/spec/containers/0/env",
    ]


# -- 3. a native request where the API server's version is unknown ----------------------------------------


@pytest.mark.parametrize("how", ["annotation", "setting"])
def test_a_native_request_with_an_unknown_server_version_gets_a_regular_container_and_the_way_out(
    config: ConfigIndex, how: str
) -> None:
    subject = pod({**IDENTITY, "entra.io/sidecar-mode": "native"} if how == "annotation" else IDENTITY)
    outcome = injected(config, subject, **({"mode": "native"} if how == "setting" else {}))
    assert any(op["path"] == "/spec/containers/0" for op in outcome.ops)
    assert not any(op["path"].startswith("/spec/initContainers") for op in outcome.ops)
    assert outcome.warnings == [
        f"{WHO}: native sidecar requested, but the API server's version is unknown (native sidecars need 1.29+; "
        "older servers refuse the Pod or never start it): injected as a regular container; declare the version "
        "with --server-version (e.g. 1.29) or give the webhook --kubeconfig to read it"
    ]


# -- 3. the 256 KiB annotation budget ----------------------------------------------------------------------


def annotated_to(total: int, filler: str = "x") -> dict[str, Any]:
    """A Pod whose annotations take exactly `total` bytes (keys plus values, UTF-8)."""
    annotations = dict(IDENTITY)
    room = total - sum(len(key) + len(value) for key, value in annotations.items()) - len("example.com/big")
    count, rest = divmod(room, len(filler.encode()))
    annotations["example.com/big"] = filler * count + "x" * rest
    subject = pod(annotations)
    assert sum(len(k.encode()) + len(v.encode()) for k, v in subject["metadata"]["annotations"].items()) == total
    return subject


def added_bytes(outcome: Inject) -> int:
    return sum(
        len(op["path"].rsplit("/", 1)[1].replace("~1", "/").encode()) + len(op["value"].encode())
        for op in outcome.ops
        if op["path"].startswith("/metadata/annotations/")
    )


NEW_SERVER = (1, 30)  # copies no seccomp profile into annotations
SECCOMP_COPY = len("container.seccomp.security.alpha.kubernetes.io/entra-sidecar") + len("runtime/default")


def test_annotations_that_just_fit_with_ours_are_injected(config: ConfigIndex) -> None:
    ours = added_bytes(decided(config, pod(), NEW_SERVER))
    subject = annotated_to(ANNOTATIONS_LIMIT - ours)  # exactly the limit: Kubernetes takes it
    outcome = decided(config, subject, NEW_SERVER)
    assert isinstance(outcome, Inject)
    assert added_bytes(outcome) == ours


def test_annotations_that_ours_would_push_past_256_kib_are_denied_naming_the_budget(config: ConfigIndex) -> None:
    ours = added_bytes(decided(config, pod(), NEW_SERVER))
    outcome = decided(config, annotated_to(ANNOTATIONS_LIMIT - ours + 1), NEW_SERVER)
    assert isinstance(outcome, Deny)
    assert (outcome.reason, outcome.code) == ("annotations-too-large", 400)
    assert outcome.message == (
        f"{WHO}: its annotations take {ANNOTATIONS_LIMIT - ours + 1:,} bytes, the injector adds {ours:,} "
        "(entra.io/status, kubectl.kubernetes.io/default-container), past Kubernetes' limit of 262,144 bytes for "
        "all keys and values: shorten or drop annotations (kubectl.kubernetes.io/last-applied-configuration is "
        "often the largest: kubectl apply --server-side writes none)"
    )


@pytest.mark.parametrize("version", [(1, 20), (1, 24), None])
def test_the_budget_counts_the_seccomp_annotation_a_1_19_to_1_24_server_adds_for_the_sidecar(
    config: ConfigIndex, version: tuple[int, int] | None
) -> None:
    # Found by the API server property suite: a 1.20 server copied the sidecar's seccompProfile into
    # `container.seccomp.security.alpha.kubernetes.io/entra-sidecar` and refused the Pod as "Too long".
    ours = added_bytes(injected(config, pod()))
    fits = decided(config, annotated_to(ANNOTATIONS_LIMIT - ours - SECCOMP_COPY), version)
    assert isinstance(fits, Inject)
    over = decided(config, annotated_to(ANNOTATIONS_LIMIT - ours - SECCOMP_COPY + 1), version)
    assert isinstance(over, Deny)
    assert f"the injector adds {ours:,} (entra.io/status, kubectl.kubernetes.io/default-container) and the API " in (
        over.message
    )
    assert (
        f"server {SECCOMP_COPY} more (seccomp profiles copied to annotations), past Kubernetes' limit" in over.message
    )


def test_the_app_containers_own_seccomp_profiles_count_too_on_such_servers(config: ConfigIndex) -> None:
    ours = added_bytes(injected(config, pod()))
    subject = annotated_to(ANNOTATIONS_LIMIT - ours - SECCOMP_COPY)
    profile = {"type": "Localhost", "localhostProfile": "profiles/agent.json"}
    subject["spec"]["containers"][0]["securityContext"] = {"seccompProfile": profile}
    copied = len("container.seccomp.security.alpha.kubernetes.io/app") + len("localhost/profiles/agent.json")
    over = decided(config, subject, (1, 20))
    assert isinstance(over, Deny)
    assert f"and the API server {SECCOMP_COPY + copied} more" in over.message
    assert isinstance(decided(config, subject, NEW_SERVER), Inject)


def test_the_budget_counts_bytes_not_characters(config: ConfigIndex) -> None:
    ours = added_bytes(decided(config, pod(), NEW_SERVER))
    # 2-byte characters: in characters this is far under the limit, in bytes it is one over.
    subject = annotated_to(ANNOTATIONS_LIMIT - ours + 1, filler="é")
    assert isinstance(decided(config, subject, NEW_SERVER), Deny)


def test_the_budget_holds_when_the_pod_has_no_annotations_at_all(config: ConfigIndex) -> None:
    # Our default-container annotation repeats the first app container's name, whatever its length.
    subject = pod(serviceAccountName="sales-agent")
    del subject["metadata"]["annotations"]
    subject["spec"]["containers"][0]["name"] = "a" * ANNOTATIONS_LIMIT
    outcome = decided(config, subject)
    assert isinstance(outcome, Deny)
    assert outcome.reason == "annotations-too-large"
    assert "its annotations take 0 bytes, the injector adds 262," in outcome.message


# -- 5. messages never echo an unbounded value ---------------------------------------------------------


@pytest.mark.parametrize(
    "annotation",
    ["entra.io/agent-identity", "entra.io/sidecar-mode", "entra.io/sidecar-port", "entra.io/inject-containers"],
)
def test_a_bad_annotation_of_a_megabyte_is_quoted_in_64_characters(config: ConfigIndex, annotation: str) -> None:
    outcome = decided(config, pod({**IDENTITY, annotation: "Q" * 1_000_000}))
    assert isinstance(outcome, Deny)
    assert outcome.reason == "bad-annotation"
    assert f"annotation {annotation}='{'Q' * 64}…'" in outcome.message
    assert len(outcome.message) < 400


def test_a_pod_name_of_a_megabyte_is_cut_at_the_longest_real_name(config: ConfigIndex) -> None:
    subject = pod({"entra.io/agent-identity": "nobody"})
    subject["metadata"]["name"] = "n" * 1_000_000
    outcome = decided(config, subject)
    assert isinstance(outcome, Deny)
    assert outcome.message.startswith(f'pod "{"n" * 253}…" in namespace "agents": entra.io/agent-identity names')
    assert len(outcome.message) < 600


def test_a_service_account_name_of_100_000_characters_is_cut_in_the_message(config: ConfigIndex) -> None:
    # Found by the fuzz suite: the no-identity warning repeated the whole service account name.
    outcome = decided(config, pod({}, serviceAccountName="9" * 100_000))
    assert isinstance(outcome, Skip)
    assert outcome.message == (
        f"{WHO}: names no agent identity, so no sidecar was injected: add the entra.io/agent-identity annotation, "
        f'or list service account "{"9" * 253}…" in an AgentIdentity\'s spec.serviceAccounts'
    )


def test_a_namespace_of_100_000_characters_is_cut_in_the_message(config: ConfigIndex) -> None:
    outcome = decide(pod(), "n" * 100_000, config, Settings())
    assert isinstance(outcome, Deny)
    assert outcome.reason == "unknown-identity"
    assert len(outcome.message) < 800
    assert outcome.message.endswith(f'but namespace "{"n" * 253}…" has no AgentIdentity of that name (have: none)')


def test_lists_in_messages_show_ten_names_and_count_the_rest(config: ConfigIndex) -> None:
    names = [f"c{number:04d}" for number in range(1000)]
    subject = pod({**IDENTITY, "entra.io/inject-containers": ",".join(f"x{name}" for name in names)})
    subject["spec"]["containers"] = [{"name": name, "image": "i"} for name in names]
    outcome = decided(config, subject)
    assert isinstance(outcome, Deny)
    assert outcome.message == (
        f"{WHO}: annotation entra.io/inject-containers names 'xc0000', 'xc0001', 'xc0002' and 997 more, but the pod "
        f"has no such app container (have: {', '.join(names[:10])} and 990 more)"
    )
