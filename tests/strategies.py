"""Hypothesis strategies: Pods and AdmissionReviews, well-formed and hostile, for the property suites.

`pods()` draws Pods an API server could send: the right JSON types, values drawn towards the edges
the core cares about (names it knows or not, ports taken or free, an existing sidecar, annotations
near the 256 KiB budget, null where Kubernetes allows it). `hostile_pods()` then puts any JSON value
anywhere in such a Pod. `valid_pods()` keeps to what an API server accepts, for dry runs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from webhook.core.budget import ANNOTATIONS_LIMIT

Json = dict[str, Any]

IDENTITIES = ["sales-agent", "support-agent", "orphan", "broken-identity", "twin-a", "nobody"]  # tests/fixtures
BLUEPRINTS = ["sales", "support", "legacy", "broken", "gone"]
NAMESPACES = ["agents"] * 8 + ["elsewhere", "kube-system"]
VERSIONS: list[tuple[int, int] | None] = [None, (1, 20), (1, 28), (1, 29), (1, 36)]
HOSTILE_TEXT = [
    "",
    " ",
    "5²",
    "\u0665\u0660\u0660\u0661",  # Arabic-Indic 5001
    "9" * 5000,
    "Q" * 100_000,
    "😀",
    "a\nb",
    "${HOME}",
    '"quoted"',
    "[[[[",
    "\\",
]
URLS = [
    "http://+:5000",
    "http://+:5001",
    "http://localhost:6000/",
    "http://+:5000;https://+:5443",
    "http://+:5²",
    "http://+:\u0665\u0660\u0660\u0660",
    "http://+:" + "9" * 5000,
    "http://+:",
    "http://+:0",
    "http://+:70000",
    "http://[::1]:7000",
]

SECCOMP_PROFILES = [
    {"type": "RuntimeDefault"},
    {"type": "Unconfined"},
    {"type": "Localhost", "localhostProfile": "profiles/agent.json"},
]

dns_labels = st.from_regex(r"[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
texts = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=12)
container_names = st.sampled_from(["app", "worker", "setup", "entra-sidecar", "istio-proxy"]) | dns_labels
env_names = st.sampled_from(["SIDECAR_URL", "BLUEPRINT_APP_ID", "AGENT_IDENTITY_APP_ID", "ASPNETCORE_URLS", "A"])
ports = st.sampled_from([5000, 5001, 6000, 8080]) | st.integers(1, 65535)


def _mostly(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid value nine times in ten, else hostile text."""
    return _rarely(10).flatmap(lambda hostile: texts if hostile else valid)


def _rarely(one_in: int) -> st.SearchStrategy[bool]:
    """True one time in `one_in`; False is the simplest value, so shrinking heads for the usual case."""
    return st.sampled_from([False] * (one_in - 1) + [True])


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Absent (a sentinel dropped by `_compact`), null, or a value."""
    return st.sampled_from([_ABSENT, None]) | strategy


_ABSENT = object()


def _compact(mapping: dict[str, Any]) -> Json:
    return {key: value for key, value in mapping.items() if value is not _ABSENT}


@st.composite
def env_vars(draw: st.DrawFn) -> Json:
    name = draw(env_names)
    value = draw(st.sampled_from(URLS) if name == "ASPNETCORE_URLS" else texts)
    return {"name": name, "value": value}


@st.composite
def containers(draw: st.DrawFn, name: str | None = None) -> Json:
    return _compact(
        {
            "name": name if name is not None else draw(container_names),
            "image": "example.com/app:1.0",
            "env": draw(_maybe(st.lists(env_vars(), max_size=4))),
            "ports": draw(_maybe(st.lists(st.builds(lambda port: {"containerPort": port}, ports), max_size=2))),
            "restartPolicy": draw(st.sampled_from([_ABSENT, _ABSENT, "Always"])),
        }
    )


@st.composite
def annotation_sets(draw: st.DrawFn, containers: list[str]) -> Json | None:
    if draw(_rarely(20)):
        return None
    found: Json = {}
    if not draw(_rarely(4)):
        found["entra.io/agent-identity"] = draw(_mostly(st.sampled_from(["sales-agent"] * 4 + IDENTITIES)))
    if draw(_rarely(5)):
        found["entra.io/blueprint"] = draw(_mostly(st.sampled_from(BLUEPRINTS)))
    if draw(_rarely(4)):
        found["entra.io/sidecar-mode"] = draw(_mostly(st.sampled_from(["native", "container"])))
    if draw(_rarely(5)):
        found["entra.io/sidecar-port"] = draw(_mostly(st.sampled_from(["5001", "6000", "8080", "80", "65536"])))
    if draw(_rarely(5)):
        names = draw(st.lists(st.sampled_from(containers) | container_names, min_size=1, max_size=3))
        found["entra.io/inject-containers"] = draw(_mostly(st.sampled_from([",".join(names), " , ".join(names)])))
    if draw(_rarely(31)):
        found["kubernetes.io/config.mirror"] = "abc"
    if draw(_rarely(6)):
        found["kubectl.kubernetes.io/default-container"] = draw(container_names)
    if draw(_rarely(6)):
        # Up against the 256 KiB budget, on both sides of it.
        used = sum(len(key) + len(value.encode()) for key, value in found.items()) + len("example.com/big")
        total = draw(st.integers(ANNOTATIONS_LIMIT - 400, ANNOTATIONS_LIMIT))
        found["example.com/big"] = draw(st.sampled_from(["x", "é"])) * max(0, (total - used) // 2) + "x" * (
            (total - used) % 2
        )
    return found


@st.composite
def pods(draw: st.DrawFn) -> Json:
    """A Pod with the JSON types Kubernetes gives, values chosen to hit the core's edges."""
    names = draw(st.lists(container_names, min_size=1, max_size=3))
    regular = [draw(containers(name)) for name in names]
    if draw(_rarely(5)):  # the Pod already has (or brought) the sidecar
        sidecar = {
            "name": "entra-sidecar",
            "image": "sidecar:1",
            "env": [{"name": "ASPNETCORE_URLS", "value": draw(st.sampled_from(URLS))}],
        }
        regular.insert(draw(st.integers(0, len(regular))), sidecar)
    init = draw(_maybe(st.lists(containers(), max_size=2)))
    metadata = _compact(
        {
            "name": draw(st.sampled_from([_ABSENT, "web-7d9c", ""]) | dns_labels),
            "generateName": draw(st.sampled_from([_ABSENT, "web-"])),
            "annotations": draw(annotation_sets(names)),
            "labels": draw(
                _maybe(st.sampled_from([{}, {"entra.io/inject": "disabled"}, {"entra.io/inject": "enabled"}]))
            ),
        }
    )
    spec = _compact(
        {
            "containers": regular,
            "initContainers": init,
            "volumes": draw(
                _maybe(
                    st.lists(
                        st.builds(
                            lambda name: {"name": name, "emptyDir": {}},
                            st.sampled_from(["data", "cache", "entra-sidecar-tmp", "entra-identity-token"]),
                        ),
                        max_size=2,
                        unique_by=lambda v: v["name"],
                    )
                )
            ),
            "restartPolicy": draw(_maybe(st.sampled_from(["Always", "Never", "OnFailure"]))),
            "serviceAccountName": draw(_maybe(st.sampled_from(["default", "sales-agent", "shared", ""]))),
            "hostNetwork": draw(_maybe(st.booleans())),
        }
    )
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
# What YAML adds for the offline `inject`: dates, bytes, and keys that are not strings (`1:`, `yes:`).
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.dates() | st.binary(max_size=4) | texts,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(texts, st.integers(), st.booleans(), st.none()), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@st.composite
def hostile_pods(draw: st.DrawFn, values: st.SearchStrategy[Any] = json_values) -> Json:
    """A drawn Pod with 1-3 of its values (or whole subtrees) replaced by any of `values`, or nested deep."""
    pod = draw(pods())
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        paths = [path for path in _paths(pod) if path]
        path = draw(st.sampled_from(paths))
        value = draw(values | st.sampled_from([None, [], {}, nested(60), [{"name": ["x"]}]]))
        parent = pod
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1]] = value
    return pod


@st.composite
def valid_pods(draw: st.DrawFn) -> Json:
    """A Pod an API server accepts as it is (unique container names, valid ports and annotations)."""
    count = draw(st.integers(1, 3))
    names = draw(
        st.lists(st.sampled_from(["app", "worker", "helper", "cache"]), min_size=count, max_size=count, unique=True)
    )
    regular = []
    used_ports: set[int] = set()
    for name in names:
        container: Json = {"name": name, "image": "example.com/app:1.0"}
        if draw(st.booleans()):
            container["env"] = [
                {"name": env, "value": "v"}
                for env in draw(st.lists(env_names.filter(lambda n: n != "ASPNETCORE_URLS"), max_size=3, unique=True))
            ]
        if draw(_rarely(3)):  # a 1.19-1.24 server copies it into an annotation, which counts in the budget
            container["securityContext"] = {"seccompProfile": draw(st.sampled_from(SECCOMP_PROFILES))}
        port = draw(st.sampled_from([None, 5000, 5001, 8080]))
        if port is not None and port not in used_ports:
            used_ports.add(port)
            container["ports"] = [{"containerPort": port}]
        regular.append(container)
    annotations: Json = {"entra.io/agent-identity": draw(st.sampled_from(["sales-agent", "support-agent"]))}
    if draw(st.booleans()):
        annotations["entra.io/sidecar-mode"] = draw(st.sampled_from(["native", "container"]))
    if draw(_rarely(4)):
        annotations["entra.io/sidecar-port"] = draw(st.sampled_from(["5001", "6000"]))
    if draw(_rarely(4)):
        annotations["entra.io/inject-containers"] = names[0]
    if draw(_rarely(5)):
        used = sum(len(key) + len(value) for key, value in annotations.items()) + len("example.com/big")
        annotations["example.com/big"] = "x" * (draw(st.integers(ANNOTATIONS_LIMIT - 300, ANNOTATIONS_LIMIT)) - used)
    spec: Json = {"containers": regular}
    if draw(_rarely(4)):
        spec["securityContext"] = {"seccompProfile": draw(st.sampled_from(SECCOMP_PROFILES))}
    if draw(st.booleans()):
        spec["initContainers"] = [{"name": "setup", "image": "example.com/setup:1.0"}]
    if draw(st.booleans()):
        spec["restartPolicy"] = draw(st.sampled_from(["Always", "Never", "OnFailure"]))
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "data", "emptyDir": {}}]
    metadata: Json = {"generateName": "fuzz-", "annotations": None if draw(_rarely(7)) else annotations}
    if metadata["annotations"] is None:
        spec["serviceAccountName"] = "sales-agent"  # bound to the identity: no annotation needed
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


# -- AdmissionReviews ---------------------------------------------------------------------------------------


def review_of(pod: Any, namespace: str = "agents", uid: str = "fuzz-1", **request: Any) -> Json:
    body = {
        "uid": uid,
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "namespace": namespace,
        "object": pod,
        "dryRun": False,
        **request,
    }
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body}


REQUEST_FIELDS = ["uid", "kind", "operation", "namespace", "subResource", "object", "dryRun"]


@st.composite
def review_bodies(draw: st.DrawFn) -> tuple[bytes, Json | None]:
    """(body, the review as sent when it is JSON we generated); a third of them hostile in shape."""
    pod = draw(st.sampled_from([pods(), pods(), hostile_pods()]).flatmap(lambda strategy: strategy))
    review = review_of(pod, draw(st.sampled_from(NAMESPACES)), draw(st.sampled_from(["u-1", "0d7e5c1a-3f4b"])))
    choice = draw(st.sampled_from(["as is", "as is", "as is", "field", "review", "deep", "bytes"]))
    if choice == "field":  # a request field of any JSON type
        review["request"][draw(st.sampled_from(REQUEST_FIELDS))] = draw(json_values)
    elif choice == "review":  # the review itself mangled
        review[draw(st.sampled_from(["apiVersion", "kind", "request"]))] = draw(json_values)
    body = json.dumps(review, separators=(",", ":")).encode()
    if choice == "deep":  # nesting as deep as the raw text allows, in a field we read
        field = draw(st.sampled_from(["namespace", "operation", "subResource", "uid"]))
        depth = draw(st.sampled_from([63, 64, 65, 1000, 20_000]))
        marked = copy.deepcopy(review)
        marked["request"][field] = "DEEP-MARK"
        body = json.dumps(marked).encode().replace(b'"DEEP-MARK"', b"[" * depth + b"]" * depth)
        return body, None
    if choice == "bytes":  # bytes that are not quite JSON
        cut = draw(st.integers(0, len(body)))
        variants = [body[:cut], body[:cut] + b"\xff", b"\x00" + body, body.replace(b'"', b"'", 1)]
        return draw(st.sampled_from(variants)), None
    return body, review
