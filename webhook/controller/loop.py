"""The controller's loop: watch both resources, queue what changed, reconcile with a few workers.

A key is never worked on by two workers at once. A failed key comes back after an exponential
backoff with jitter; a good one after the resync period. Blueprint changes requeue the identities
that name them, and each blueprint's status (its federated credentials) is kept current.
"""

from __future__ import annotations

import copy
import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.common.models import (
    BLUEPRINT,
    GROUP,
    IDENTITY,
    INSTALL_CRDS,
    PLURALS,
    VERSION,
    AgentBlueprint,
    AgentIdentity,
    ConfigObject,
    parse_resource,
)
from webhook.common.watch import Follower
from webhook.controller import readiness, reconcile
from webhook.controller.failure import Retry
from webhook.controller.kube import Kube
from webhook.controller.provision import Provisioner
from webhook.controller.settings import ControllerSettings

log = logging.getLogger(__name__)

Json = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name


class WorkQueue:
    """Delayed, de-duplicated keys; `get` hands out a key only while no worker holds it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._due: dict[Key, float] = {}
        self._busy: set[Key] = set()
        self._changed = threading.Condition()

    def add(self, key: Key, delay: float = 0.0) -> None:
        """Due after `delay`, unless it is due earlier already."""
        with self._changed:
            due = self.clock() + delay
            if key not in self._due or due < self._due[key]:
                self._due[key] = due
                self._changed.notify()

    def get(self, stopping: threading.Event) -> Key | None:
        with self._changed:
            while not stopping.is_set():
                waiting = [(due, key) for key, due in self._due.items() if key not in self._busy]
                if waiting:
                    due, key = min(waiting)
                    if due <= self.clock():
                        del self._due[key]
                        self._busy.add(key)
                        return key
                    self._changed.wait(min(due - self.clock(), 1.0))
                else:
                    self._changed.wait(1.0)
            return None

    def done(self, key: Key) -> None:
        with self._changed:
            self._busy.discard(key)
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until no key is being worked on (True), or `timeout` passed."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._busy, timeout)

    def pending(self) -> int:
        with self._changed:
            return len(self._due)


def _ignore(*args: str) -> None:
    del args


class Controller:
    def __init__(
        self,
        api: client.ApiClient,
        settings: ControllerSettings,
        provisioner: Provisioner,
        kube: Kube,
        on_reconcile: Callable[[str, str, str], None] = _ignore,  # kind, result, reason
        on_watch_restart: Callable[[str, str], None] = _ignore,  # resource, reason
    ) -> None:
        self.settings = settings
        self.provisioner = provisioner
        self.kube = kube
        self.objects = client.CustomObjectsApi(api)
        self.queue = WorkQueue()
        self.stopping = threading.Event()
        self.on_reconcile = on_reconcile
        self.on_watch_restart = on_watch_restart
        self._cache: dict[str, dict[tuple[str, str], Json]] = {IDENTITY: {}, BLUEPRINT: {}}
        self._listed: set[str] = set()
        self._lock = threading.Lock()
        self._failures: dict[Key, int] = {}
        self._followers: list[Follower] = []
        self._threads: list[threading.Thread] = []
        self._issuer: str | None = settings.issuer
        self.uninstalling = threading.Event()  # the install is being removed: nothing is provisioned any more

    # -- watching ----------------------------------------------------------------------------

    def start(self) -> None:
        for kind in (BLUEPRINT, IDENTITY):
            follower = Follower(
                PLURALS[kind],
                self._list_call(kind),
                functools.partial(self._on_list, kind),
                functools.partial(self._event, kind),
                functools.partial(self._watch_restarted, kind),
                hint_404=f" (are the CRDs installed? {INSTALL_CRDS})",
            )
            self._followers.append(follower)
            self._threads.append(follower.start())
        for index in range(self.settings.workers):
            worker = threading.Thread(target=self._work, name=f"reconcile-{index}", daemon=True)
            worker.start()
            self._threads.append(worker)

    def stopped_threads(self) -> list[str]:
        """Watch and worker threads that ended although nothing asked them to (a liveness failure)."""
        return [] if self.stopping.is_set() else [thread.name for thread in self._threads if not thread.is_alive()]

    def unlisted(self) -> list[str]:
        """The kinds not listed yet (readiness waits for both)."""
        with self._lock:
            return [PLURALS[kind] for kind in (BLUEPRINT, IDENTITY) if kind not in self._listed]

    def identity_counts(self) -> dict[tuple[str, str], int]:
        return reconcile.ready_counts(self._snapshot(IDENTITY).values())

    def stop(self) -> None:
        self.stopping.set()
        for follower in self._followers:
            follower.stop()

    def release_all(self, why: str) -> int:
        """Provision nothing more, wait for the passes under way, then release every finalizer of ours on the
        identities as listed now (each left in Entra as it is, with an Event). How many were released."""
        self.uninstalling.set()
        self.queue.wait_idle(self.settings.http_timeout_seconds * 2)
        listed = self._list_call(IDENTITY)(_request_timeout=30)  # not the cache: maybe not filled yet
        return sum(self.provisioner.release(raw, why) for raw in listed.get("items") or [])

    def _list_call(self, kind: str) -> Callable[..., Any]:
        if self.settings.namespace:
            return functools.partial(
                self.objects.list_namespaced_custom_object, GROUP, VERSION, self.settings.namespace, PLURALS[kind]
            )
        return functools.partial(self.objects.list_cluster_custom_object, GROUP, VERSION, PLURALS[kind])

    def _on_list(self, kind: str, items: list[Json]) -> None:
        with self._lock:
            self._cache[kind] = {_key(raw): raw for raw in items}
            self._listed.add(kind)
        for raw in items:
            self._changed(kind, raw)
        # Each kind waits for the other's list (an identity for its blueprint, a blueprint for what its
        # identities need): everything the other kind holds is queued again, also what names nothing listed.
        other = BLUEPRINT if kind == IDENTITY else IDENTITY
        for namespace, name in self._snapshot(other):
            self.queue.add((other, namespace, name))

    def _watch_restarted(self, kind: str, reason: str, error: Exception | None) -> None:
        del error  # the follower logged it
        self.on_watch_restart(PLURALS[kind], reason)

    def _event(self, kind: str, type_: str, raw: Json) -> None:
        with self._lock:
            if type_ == "DELETED":
                self._cache[kind].pop(_key(raw), None)
            else:
                self._cache[kind][_key(raw)] = raw
        self._changed(kind, raw)

    def _changed(self, kind: str, raw: Json) -> None:
        namespace, name = _key(raw)
        if kind == IDENTITY:
            self.queue.add((IDENTITY, namespace, name))
            blueprint = (raw.get("spec") or {}).get("blueprint")
            if isinstance(blueprint, str):
                self.queue.add((BLUEPRINT, namespace, blueprint))
            return
        self.queue.add((BLUEPRINT, namespace, name))
        for (space, identity), found in self._snapshot(IDENTITY).items():
            if space == namespace and (found.get("spec") or {}).get("blueprint") == name:
                self.queue.add((IDENTITY, space, identity))

    def _snapshot(self, kind: str) -> dict[tuple[str, str], Json]:
        with self._lock:
            return dict(self._cache[kind])

    def blueprint_of(self, namespace: str, name: str) -> ConfigObject | None:
        raw = self._snapshot(BLUEPRINT).get((namespace, name))
        return None if raw is None else parse_resource(BLUEPRINT, raw)

    # -- working -----------------------------------------------------------------------------

    def _work(self) -> None:
        while not self.stopping.is_set():
            key = self.queue.get(self.stopping)
            if key is None:
                return
            try:
                reason = self._handle(key)
            except Retry as retry:
                self.on_reconcile(key[0], "retry", retry.reason)
                self._retry(key, retry.after)
            except ApiException as error:
                if error.status != 409:  # a conflict just means: read again
                    log.warning("reconcile of %s/%s failed: %s %s", key[1], key[2], error.status, error.reason)
                self.on_reconcile(key[0], "error", "Conflict" if error.status == 409 else f"API{error.status}")
                self._retry(key)
            except Exception:
                log.exception("reconcile of %s %s/%s failed", *key)
                self.on_reconcile(key[0], "error", "InternalError")
                self._retry(key)
            else:
                self.on_reconcile(key[0], "success", reason)
                self._failures.pop(key, None)
                self.queue.add(key, self.settings.resync_seconds * random.uniform(0.9, 1.1))
            finally:
                self.queue.done(key)

    def _retry(self, key: Key, after: float | None = None) -> None:
        """After `after` seconds when the failure says (Retry-After, a create being waited for), else a backoff."""
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        if after is not None:
            self.queue.add(key, after * random.uniform(1.0, 1.2))
            return
        delay = min(self.settings.backoff_seconds * 2 ** (failures - 1), self.settings.backoff_max_seconds)
        self.queue.add(key, delay * random.uniform(0.8, 1.2))

    def _handle(self, key: Key) -> str:
        """What was found or done, for the reconcile metric."""
        kind, namespace, name = key
        raw = self._snapshot(kind).get((namespace, name))
        if raw is None:
            return "Gone"
        if kind == IDENTITY:
            if self.uninstalling.is_set():  # finalizers released: none is added again
                return "Uninstalling"
            with self._lock:
                if BLUEPRINT not in self._listed:  # "no such blueprint" would be a guess: listing them queues it
                    return "BlueprintsNotListed"
            return self.provisioner.reconcile(_copy(raw), self.blueprint_of, self.ready_of)
        return self._blueprint_status(raw)

    def ready_of(self, namespace: str, name: str) -> Json:
        """A blueprint's Ready condition as last written (empty before the controller wrote one)."""
        raw = self._snapshot(BLUEPRINT).get((namespace, name))
        return {} if raw is None else reconcile.condition_of(reconcile.status_of(raw))

    def _blueprint_status(self, raw: Json) -> str:
        """Every blueprint's Ready (valid, and its Secret there when it has one) and, for workload identity,
        the federated credentials its identities need."""
        with self._lock:
            if IDENTITY not in self._listed:
                # What it needs comes from the identities that name it (its federated credentials, whether its
                # Secret must be readable): a status written before they are listed would say "none needed".
                # Listing them queues every blueprint again.
                return "IdentitiesNotListed"
        blueprint = parse_resource(BLUEPRINT, raw)
        namespace, name = _key(raw)
        identities = [
            parsed
            for (space, _), found in self._snapshot(IDENTITY).items()
            if space == namespace and isinstance(parsed := parse_resource(IDENTITY, found), AgentIdentity)
        ]
        credential = blueprint.spec.credential if isinstance(blueprint, AgentBlueprint) else None
        secret = None
        if isinstance(blueprint, AgentBlueprint) and credential is not None and credential.client_secret:
            secret = self.provisioner.credentials.secret_problem(blueprint)  # the value is dropped at once
        needed = any(i.spec.managed and i.spec.blueprint == name for i in identities)
        wanted = [readiness.blueprint_ready(blueprint, secret, needed)]
        extra: Json | None = None
        if isinstance(blueprint, AgentBlueprint) and credential is not None and credential.workload_identity:
            if self._issuer is None:
                self._issuer = self.kube.issuer()
            credentials = reconcile.federated_credentials(
                blueprint, identities, self._issuer, self.provisioner.controller_account
            )
            fits, reason, message = reconcile.fit_condition(len(credentials))
            wanted.append(reconcile.Wanted(reconcile.FEDERATED_FIT, fits, reason, message))
            extra = {"federatedCredentials": credentials}
        status = reconcile.status_of(raw)
        generation = int(raw["metadata"].get("generation") or 0)
        unchanged = extra is None or status.get("federatedCredentials") == extra["federatedCredentials"]
        if not (unchanged and reconcile.holds(status, wanted, generation)):
            fitted = [w for w in wanted[1:] if not w.status and reconcile.is_news(status, w)]
            self.provisioner.status.report(raw, BLUEPRINT, wanted, extra=extra)
            for misfit in fitted:
                self.kube.event(raw, BLUEPRINT, "TooManyFederatedCredentials", misfit.message, warning=True)
        if secret is not None and not wanted[0].status:
            # No watch tells when a Secret is created or granted (the controller may not list Secrets):
            # it is read again with the backoff, as a managed identity's failure is retried.
            raise Retry(wanted[0].reason)
        return wanted[0].reason


def _key(raw: Json) -> tuple[str, str]:
    metadata = raw.get("metadata") or {}
    return str(metadata.get("namespace")), str(metadata.get("name"))


def _copy(raw: Json) -> Json:
    return copy.deepcopy(raw)
