"""The controller's hold on its own install: a finalizer on its ClusterRole, ClusterRoleBinding and
ServiceAccount while it leads, let go in an order where each write still has its rights and its token, and
never added to what is already being deleted."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from webhook.controller.install import FINALIZER, Install, going, with_finalizer, without_finalizer
from webhook.controller.kube import Held

FREE = Held(("other",), False, "1")
HELD = Held(("other", FINALIZER), False, "2")
DELETING = Held((FINALIZER,), True, "3")
KINDS = ("ServiceAccount", "ClusterRoleBinding", "ClusterRole")


class Objects:
    """The install's objects as the API server has them; each write is recorded."""

    def __init__(self, *found: Held | None, conflicts: int = 0) -> None:
        self.found = dict(zip(KINDS, found, strict=True))
        self.writes: list[tuple[str, list[str], str]] = []
        self.conflicts = conflicts
        self.tokens = 0

    def with_fresh_token(self, namespace: str, name: str) -> Objects:
        assert (namespace, name) == ("entra-system", "ctl")
        self.tokens += 1
        return self

    def install_object(self, kind: str, name: str, namespace: str = "") -> Held | None:
        assert (name, namespace) == ("ctl", "entra-system" if kind == "ServiceAccount" else "")
        return self.found[kind]

    def set_install_finalizers(self, kind: str, name: str, namespace: str, held: Held, finalizers: list[str]) -> None:
        assert (name, namespace) == ("ctl", "entra-system" if kind == "ServiceAccount" else "")
        if self.conflicts:
            self.conflicts -= 1
            raise ApiException(status=409)
        self.writes.append((kind, finalizers, held.version))
        self.found[kind] = Held(tuple(finalizers), held.deleting, str(int(held.version) + 1))


def install(objects: Objects) -> Install:
    return Install(objects, "ctl", ("entra-system", "ctl"))  # type: ignore[arg-type]


def test_the_install_is_going_when_any_of_its_objects_is_deleted_or_being_deleted() -> None:
    assert not going([FREE, HELD, HELD])
    assert going([HELD, DELETING, HELD])
    assert going([HELD, HELD, None])


def test_an_object_being_deleted_is_never_held_anew_and_a_held_one_is_left_as_it_is() -> None:
    assert with_finalizer(FREE) == ["other", FINALIZER]
    assert with_finalizer(HELD) is None
    assert with_finalizer(Held((), True, "4")) is None
    assert without_finalizer(HELD) == ["other"]
    assert without_finalizer(FREE) is None


def test_a_leader_holds_every_object_guarded_by_the_version_it_read_and_only_once() -> None:
    objects = Objects(HELD, FREE, FREE)
    assert install(objects).hold_unless_going() is False
    assert objects.writes == [("ClusterRoleBinding", ["other", FINALIZER], "1"),
                              ("ClusterRole", ["other", FINALIZER], "1")]  # fmt: skip
    assert install(objects).hold_unless_going() is False
    assert len(objects.writes) == 2


def test_a_spare_token_is_issued_while_all_is_well_and_replaced_now_and_then() -> None:
    now = [0.0]
    objects = Objects(HELD, HELD, HELD)
    held = Install(objects, "ctl", ("entra-system", "ctl"), clock=lambda: now[0])  # type: ignore[arg-type]
    held.hold_unless_going()
    held.hold_unless_going()
    assert objects.tokens == 1
    now[0] = 301.0
    held.hold_unless_going()
    assert objects.tokens == 2


def test_a_going_install_is_not_held_and_says_so() -> None:
    objects = Objects(FREE, DELETING, FREE)
    assert install(objects).hold_unless_going() is True
    assert objects.writes == []
    assert objects.tokens == 0  # none issued once it is going (a namespace being deleted refuses it)


def test_letting_go_writes_what_is_not_being_deleted_first_then_the_account_the_binding_the_role() -> None:
    objects = Objects(DELETING, DELETING, DELETING)
    uninstalled = Objects(Held((FINALIZER,), True, "3"), Held(("x", FINALIZER), True, "3"), HELD)
    install(uninstalled).let_go()
    assert uninstalled.writes == [("ClusterRole", ["other"], "2"), ("ServiceAccount", [], "3"),
                                  ("ClusterRoleBinding", ["x"], "3")]  # fmt: skip
    install(objects).let_go()
    assert [kind for kind, _, _ in objects.writes] == ["ServiceAccount", "ClusterRoleBinding", "ClusterRole"]


def test_letting_go_reads_again_on_a_conflict_and_leaves_what_it_does_not_hold() -> None:
    objects = Objects(FREE, HELD, DELETING, conflicts=1)
    install(objects).let_go()
    assert objects.writes == [("ClusterRoleBinding", ["other"], "2"), ("ClusterRole", [], "3")]
