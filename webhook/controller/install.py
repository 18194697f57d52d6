"""The controller's own install: held while it leads, let go once it has released what it holds.

An uninstall (`helm uninstall`, `kubectl delete -k`) deletes the controller's ClusterRoleBinding and
ServiceAccount in the same breath as its Deployment, and deleting the CRDs (`kubectl delete -k
manifests/crds`) its ClusterRole with them: its rights or its token would be gone before it could
release its finalizers on the AgentIdentities, which would then hold their CRD in Terminating forever
(or, had it lived on, let `deletionPolicy: Delete` delete them in Entra). So the leader holds a
finalizer of its own on all three. Being deleted, they keep working (RBAC honours a role and binding
until they are gone; a service account's tokens stay valid for 60 s after its deletion began) until
the leader has released every AgentIdentity, leaving each in Entra, and lets them go, in an order
where each write still has what it needs: those not being deleted first (which changes nothing),
then the account, then the binding, then the role, all with a spare token issued while all was well
and first used for these writes (the API server caches a token it has authenticated for 10 s, so it
outlives the account it names). Helm keeps the role at uninstall and manifests/ ships it with the
CRDs, so that an uninstall never takes the role and the binding together (removing each takes away
the right to write the other). A leader that stops for any other reason (a rolling update, scaled to
zero) lets them go too: nothing ever waits on a controller that is not running.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

from webhook.controller.kube import Held, Kube

log = logging.getLogger(__name__)

FINALIZER = "entra.io/release-identities"
Object = tuple[str, str, str]  # kind, name, namespace ("" for cluster-scoped)


def going(found: list[Held | None]) -> bool:
    """The install is being removed: one of its objects is deleted or being deleted."""
    return any(held is None or held.deleting for held in found)


def with_finalizer(held: Held) -> list[str] | None:
    """The finalizers to write to hold it, or None: held already, or being deleted (never held anew)."""
    if held.deleting or FINALIZER in held.finalizers:
        return None
    return [*held.finalizers, FINALIZER]


def without_finalizer(held: Held) -> list[str] | None:
    """The finalizers to write to let it go, or None: not held."""
    if FINALIZER not in held.finalizers:
        return None
    return [f for f in held.finalizers if f != FINALIZER]


SPARE_SECONDS = 300.0  # a spare token is replaced this often (issued for 600 s, the shortest allowed)


@dataclass
class Install:
    """The controller's ClusterRole and ClusterRoleBinding (one name) and its ServiceAccount."""

    kube: Kube
    name: str
    account: tuple[str, str]  # namespace, name
    clock: Callable[[], float] = time.monotonic
    spare: Kube | None = None  # a client with a token issued while all was well, never used until `let_go`
    spare_since: float = 0.0

    @property
    def objects(self) -> list[Object]:
        namespace, account = self.account
        # The order they are let go in, among those being deleted.
        return [("ServiceAccount", account, namespace), ("ClusterRoleBinding", self.name, ""),
                ("ClusterRole", self.name, "")]  # fmt: skip

    def _read(self) -> list[Held | None]:
        return [self.kube.install_object(*found) for found in self.objects]

    def going(self) -> bool:
        return going(self._read())

    def hold_unless_going(self) -> bool:
        """Hold each object where not held yet, unless the install is going (True). One read of each; a write
        that conflicts is left for the next look."""
        found = self._read()
        if going(found):
            return True
        try:
            for (kind, name, namespace), held in zip(self.objects, found, strict=True):
                if held is not None and (wanted := with_finalizer(held)) is not None:
                    self.kube.set_install_finalizers(kind, name, namespace, held, wanted)
        except ApiException as error:
            if error.status != 409:
                raise
        if self.spare is None or self.clock() - self.spare_since > SPARE_SECONDS:
            # Issued now: a namespace being deleted accepts no TokenRequest.
            self.spare, self.spare_since = self.kube.with_fresh_token(*self.account), self.clock()
        return False

    def let_go(self) -> None:
        """Remove the finalizer from each, those not being deleted first, then the account, the binding, the
        role, with the spare token (its first use, while the account still exists, is cached by the API
        server as authenticated for 10 s, so it outlives the account it names). A conflict is read again."""
        for _ in range(3):
            writes = [
                (kind, name, namespace, held, wanted)
                for (kind, name, namespace), held in zip(self.objects, self._read(), strict=True)
                if held is not None and (wanted := without_finalizer(held)) is not None
            ]
            if not writes:
                return
            kube = self.spare or self.kube
            try:
                for write in sorted(writes, key=lambda write: write[3].deleting):  # stable: `objects` order
                    kube.set_install_finalizers(*write)
                return
            except ApiException as error:
                if error.status != 409:
                    raise
        log.warning("could not remove the finalizers of ClusterRole and ClusterRoleBinding %s and ServiceAccount "
                    "%s: they kept changing", self.name, "/".join(self.account))  # fmt: skip
