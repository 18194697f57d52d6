"""Leader election on a coordination.k8s.io/v1 Lease, as Kubernetes' own controllers do it.

One replica holds the Lease and renews it; the others watch it and take over once it has not
changed for a whole lease duration, judged by their own monotonic clock (never by comparing the
holder's timestamps with local time, so clock skew between nodes does not matter).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)
TIMEOUT = 5


class Elector:
    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        lease_seconds: float,
        renew_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.clock = clock
        self._observed: tuple[object, ...] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0
        self._reached_at: float | None = None  # the last time the Lease was read or written
        self._holder: str | None = None

    def healthy(self) -> tuple[bool, str]:
        """Whether this replica reaches the Lease: a standby that cannot could not take over."""
        if self._reached_at is None:
            return False, f"has not reached Lease {self.namespace}/{self.name} yet"
        ago = self.clock() - self._reached_at
        if ago > max(self.lease_seconds, 3 * self.renew_seconds):
            return False, f"has not reached Lease {self.namespace}/{self.name} for {ago:.0f}s"
        role = "leading" if self._holder == self.identity else f"standing by (Lease held by {self._holder})"
        return True, role

    def acquire(self, stopping: threading.Event) -> bool:
        """Block until this replica leads (True) or `stopping` is set (False)."""
        waiting_for: str | None = None
        while not stopping.is_set():
            holder = self.try_acquire_or_renew()
            if holder == self.identity:
                log.info("leading: holds Lease %s/%s as %s", self.namespace, self.name, self.identity)
                return True
            if holder != waiting_for:
                log.info("standing by: Lease %s/%s is held by %s", self.namespace, self.name, holder)
                waiting_for = holder
            stopping.wait(self.renew_seconds)
        return False

    def keep(self, stopping: threading.Event, on_lost: Callable[[], None]) -> None:
        """Renew until stopped; if renewals fail for a lease duration, leadership is lost."""
        while not stopping.wait(self.renew_seconds):
            if self.try_acquire_or_renew() == self.identity:
                continue
            if self.clock() - self._renewed_at >= self.lease_seconds:
                log.error("lost Lease %s/%s", self.namespace, self.name)
                on_lost()
                return

    def try_acquire_or_renew(self) -> str | None:
        """The holder after this attempt (ours on success)."""
        now = dt.datetime.now(dt.UTC)
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace, _request_timeout=TIMEOUT)
        except ApiException as error:
            if error.status != 404:
                log.warning("reading Lease %s/%s failed: %s %s", self.namespace, self.name, error.status, error.reason)
                return None
            return self._create(now)
        except OSError as error:
            log.warning("reading Lease %s/%s failed: %s", self.namespace, self.name, error)
            return None
        self._reached_at = self.clock()
        spec = lease.spec or client.V1LeaseSpec()
        self._holder = spec.holder_identity
        record = (spec.holder_identity, spec.renew_time, spec.lease_transitions)
        if record != self._observed:
            self._observed, self._observed_at = record, self.clock()
        holder: str | None = spec.holder_identity
        expired = self.clock() - self._observed_at >= (spec.lease_duration_seconds or self.lease_seconds)
        if holder and holder != self.identity and not expired:
            return holder
        taking_over = holder != self.identity
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = math.ceil(self.lease_seconds)
        spec.renew_time = now
        if taking_over:
            spec.acquire_time = now
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        lease.spec = spec
        try:
            self.leases.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=TIMEOUT)
        except (ApiException, OSError) as error:
            log.info("Lease %s/%s not taken: %s", self.namespace, self.name, getattr(error, "status", error))
            return holder if holder != self.identity else None
        self._renewed_at = self._reached_at = self.clock()
        self._holder = self.identity
        return self.identity

    def release(self) -> None:
        """On a clean shutdown: let a standby take over at once instead of after a lease duration."""
        try:
            lease = self.leases.read_namespaced_lease(self.name, self.namespace, _request_timeout=TIMEOUT)
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                self.leases.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=TIMEOUT)
        except (ApiException, OSError) as error:
            log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, error)

    def _create(self, now: dt.datetime) -> str | None:
        lease = client.V1Lease(
            metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=client.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=math.ceil(self.lease_seconds),
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        try:
            self.leases.create_namespaced_lease(self.namespace, lease, _request_timeout=TIMEOUT)
        except (ApiException, OSError) as error:
            log.info("Lease %s/%s not created: %s", self.namespace, self.name, getattr(error, "status", error))
            return None
        self._renewed_at = self._reached_at = self.clock()
        self._holder = self.identity
        return self.identity
