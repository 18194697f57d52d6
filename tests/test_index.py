"""The config snapshot: lookups, service-account bindings, copy-on-write updates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import resource
from tests.fuzz import budget, count
from webhook.common.models import IDENTITY, AgentIdentity, ObjectRef, parse_object
from webhook.core.index import ConfigIndex


def identity(name: str, namespace: str = "agents", accounts: tuple[str, ...] = ()) -> AgentIdentity:
    spec = {"blueprint": "sales", "clientId": "f3897825-fd03-45f5-90eb-fdbf26135650", "serviceAccounts": list(accounts)}
    parsed = parse_object(resource(IDENTITY, name, spec, namespace))
    assert isinstance(parsed, AgentIdentity)
    return parsed


def test_lookup_is_per_namespace() -> None:
    index = ConfigIndex.of([identity("a"), identity("a", namespace="other")])
    found = index.get(IDENTITY, "other", "a")
    assert found is not None
    assert found.ref.namespace == "other"
    assert index.get(IDENTITY, "third", "a") is None
    assert index.names(IDENTITY, "agents") == ["a"]


def test_service_account_binding_comes_from_the_identities() -> None:
    index = ConfigIndex.of([identity("a", accounts=("sa1",)), identity("b", accounts=("sa2", "sa1"))])
    assert [found.ref.name for found in index.bound_identities("agents", "sa1")] == ["a", "b"]
    assert [found.ref.name for found in index.bound_identities("agents", "sa2")] == ["b"]
    assert index.bound_identities("agents", "nobody") == []


def test_updates_make_a_new_snapshot_and_leave_the_old_one_alone() -> None:
    old = ConfigIndex.of([identity("a", accounts=("sa",))])
    new = old.with_object(identity("a", accounts=("other",)))
    assert [found.ref.name for found in old.bound_identities("agents", "sa")] == ["a"]
    assert new.bound_identities("agents", "sa") == []
    assert [found.ref.name for found in new.bound_identities("agents", "other")] == ["a"]


def test_removal_drops_the_object_and_its_bindings() -> None:
    index = ConfigIndex.of([identity("a", accounts=("sa",)), identity("b")])
    smaller = index.without(ObjectRef(IDENTITY, "agents", "a"))
    assert smaller.names(IDENTITY, "agents") == ["b"]
    assert smaller.bound_identities("agents", "sa") == []
    assert smaller.without(ObjectRef(IDENTITY, "agents", "missing")) is smaller


def test_replacing_a_kind_keeps_the_other_kind() -> None:
    index = ConfigIndex.of([identity("a")])
    replaced = index.replace_kind(IDENTITY, [identity("z", namespace="n2")])
    assert replaced.names(IDENTITY, "agents") == []
    assert replaced.names(IDENTITY, "n2") == ["z"]
    assert replaced.count(IDENTITY) == 1


_NAMES = st.sampled_from(["a", "b", "c", "d"])
_CHANGES = st.lists(
    st.tuples(
        st.booleans(),  # True: add or replace; False: delete
        st.sampled_from(["agents", "other"]),
        _NAMES,
        st.lists(st.sampled_from(["sa1", "sa2", "sa3"]), max_size=3, unique=True),
    ),
    max_size=30,
)


@budget(quick=200, long=5000)
@given(_CHANGES)
def test_changes_one_at_a_time_give_the_same_snapshot_as_building_it_anew(
    changes: list[tuple[bool, str, str, list[str]]],
) -> None:
    count("index: change sequences")
    index = ConfigIndex()
    live: dict[tuple[str, str], AgentIdentity] = {}
    for add, namespace, name, accounts in changes:
        if add:
            found = identity(name, namespace, tuple(accounts))
            index, live[(namespace, name)] = index.with_object(found), found
        else:
            index = index.without(ObjectRef(IDENTITY, namespace, name))
            live.pop((namespace, name), None)
    rebuilt = ConfigIndex.of(live.values())
    for namespace in ("agents", "other"):
        assert index.names(IDENTITY, namespace) == rebuilt.names(IDENTITY, namespace)
        for account in ("sa1", "sa2", "sa3"):
            assert index.bound_identities(namespace, account) == rebuilt.bound_identities(namespace, account)
    assert index.count(IDENTITY) == len(live)
