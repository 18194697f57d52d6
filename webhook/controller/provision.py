"""One reconcile of one managed `AgentIdentity`: the cluster and Graph, in a crash-safe order.

1. Our finalizer first, so a deletion always comes back to us.
2. The id: `spec.clientId` (adoption), else `status.clientId`, else, with the directory credential,
   an identity carrying our marker tag (a create whose answer was never recorded), else a create.
   Before the create is sent, the intent (`status.pendingCreate`: marker and time) is written,
   guarded by the resourceVersion we read; the id goes to the status at once, clearing the intent in
   the same write. An intent whose identity Entra does not list yet (its lists lag its creates) is
   waited for before a second create is risked. A blueprint alone may not list: an intent without an
   id is reported (`CreateUnconfirmed`, with the admin's command to look), never created again blindly.
3. Display name and marker brought in line as the blueprint; sponsors as the directory app
   (`AgentIdentity.ReadWrite.All`), else a `Synced=False` condition when the spec changed them.
4. On deletion: delete in Entra (`deletionPolicy: Delete`) or leave it (`Retain`), then the finalizer.

Every failure ends as `Ready=False` (or only `Synced=False` for a usable identity) with the error's
code as reason, what to do in the message, and an Event; then `Retry` asks the loop for a backoff.
What to do is decided in `steps.py` and `reconcile.py`; this module makes the calls.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from kubernetes.client.exceptions import ApiException

from webhook.common.models import IDENTITY, INSTALL_CRDS, READY, AgentIdentity, ObjectRef
from webhook.controller import advice, readiness, reconcile, steps
from webhook.controller.credentials import BlueprintOf, Credentials, Session
from webhook.controller.failure import Failure, Retry
from webhook.controller.graph import EntraIdentity, GraphError
from webhook.controller.kube import Kube
from webhook.controller.reconcile import (
    PENDING,
    SYNCED,
    Doomed,
    Intent,
    Wanted,
    intent_of,
    ready_and_synced,
    status_of,
)
from webhook.controller.settings import ControllerSettings
from webhook.controller.status import StatusWriter
from webhook.controller.tokens import TokenError

log = logging.getLogger(__name__)

RELEASED = "Released"

Json = dict[str, Any]
ReadyOf = Callable[[str, str], Mapping[str, Any]]  # namespace, name -> that blueprint's Ready condition
P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Pass:
    """One reconcile's view of the resource: `raw` is replaced by each write's answer, never edited."""

    raw: Json
    identity: AgentIdentity
    tag: str


def left_in_entra(raw: Json, why: str) -> str:
    """What a release without an Entra delete says: why, and what is left where."""
    client_id = status_of(raw).get("clientId") or (raw.get("spec") or {}).get("clientId")
    left = f"agent identity {client_id}" if client_id else "anything created for it"
    return (
        f"{why}: finalizer released, {left} left in Entra as it is (deletionPolicy applies only to an "
        "AgentIdentity deleted on its own); reinstalled, the controller manages it again"
    )


class Stale(Exception):
    """What the pass read was behind the API server: run it again on `fresh`."""

    def __init__(self, fresh: Json) -> None:
        super().__init__("stale")
        self.fresh = fresh


class Provisioner:
    def __init__(
        self,
        kube: Kube,
        credentials: Credentials,
        settings: ControllerSettings,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kube = kube
        self.credentials = credentials
        self.settings = settings
        self.now = now
        self.status = StatusWriter(kube, now)

    @property
    def controller_account(self) -> tuple[str, str]:
        return self.credentials.controller_account

    @property
    def create_window(self) -> float:
        """How long an unanswered create may take to show in Entra's list, counted from its intent."""
        return self.settings.http_timeout_seconds + self.settings.replication_seconds

    def reconcile(self, raw: Json, blueprint_of: BlueprintOf, ready_of: ReadyOf = lambda *_: {}) -> str:
        """One pass; returns what it found or did (for metrics), or raises `Retry`. `ready_of` is a blueprint's
        Ready condition, which an unmanaged identity's Ready follows."""
        try:
            return self._reconcile(raw, blueprint_of, ready_of)
        except Stale as stale:  # once: the resource as the API server has it
            return self._reconcile(stale.fresh, blueprint_of, ready_of)

    def _reconcile(self, raw: Json, blueprint_of: BlueprintOf, ready_of: ReadyOf) -> str:
        step = steps.first_step(raw)
        if isinstance(step, steps.Skip):
            return step.outcome
        if isinstance(step, steps.ReportInvalid):
            if not step.managed:  # Ready only: nothing to sync, and nothing to retry until the spec changes
                return self._report(raw, Wanted(READY, False, "InvalidSpec", step.message))
            self.status.report(raw, IDENTITY, ready_and_synced(False, "InvalidSpec", step.message))
            raise Retry("InvalidSpec")
        if isinstance(step, steps.Resolve):
            identity = step.identity
            namespace, name = identity.ref.namespace, identity.spec.blueprint
            return self._report(raw, readiness.reference_ready(identity, blueprint_of(namespace, name),
                                                               ready_of(namespace, name)))  # fmt: skip
        if isinstance(step, steps.Release):
            if step.warning:
                log.warning("%s", step.warning)
            outcome = self._delete(raw, step.doomed, blueprint_of) if step.doomed else step.outcome
            self.kube.set_finalizers(raw, step.finalizers)  # guarded: a pass on a stale copy stops here
            if outcome == RELEASED:  # said once the release is written, so a second pass says nothing
                why = "the AgentIdentity CRD is being deleted (which deletes every AgentIdentity)"
                self.status.announce(raw, IDENTITY, Wanted(READY, False, RELEASED, left_in_entra(raw, why)),
                                     warning=True)  # fmt: skip
            return outcome
        if step.finalizers is not None:
            raw = self.kube.set_finalizers(raw, step.finalizers)
        work = Pass(raw, step.identity, reconcile.marker(self.settings.cluster_name, str(raw["metadata"]["uid"])))
        try:
            return self._provision(work, blueprint_of)
        except Failure as failure:
            status = status_of(work.raw)
            wanted = steps.failed(status, work.identity, failure.reason, failure.message, failure.unusable)
            self.status.report(work.raw, IDENTITY, wanted, extra={PENDING: None} if failure.forget_intent else None)
            raise Retry(failure.reason, failure.after) from None

    def release(self, raw: Json, why: str) -> bool:
        """Remove this controller's finalizer, leaving the identity in Entra as it is, with an Event saying
        why; read again on a conflict. False: not held (gone, or not ours)."""
        for _ in range(3):
            finalizers = list(raw["metadata"].get("finalizers") or [])
            if reconcile.FINALIZER not in finalizers:
                return False
            try:
                self.kube.set_finalizers(raw, [f for f in finalizers if f != reconcile.FINALIZER])
            except ApiException as error:
                if error.status == 404:
                    return False
                if error.status != 409:
                    raise
                ref = raw["metadata"]
                raw = self.kube.read(IDENTITY, ref["namespace"], ref["name"])
                continue
            self.status.announce(raw, IDENTITY, Wanted(READY, False, RELEASED, left_in_entra(raw, why)), warning=False)
            return True
        return False

    def _report(self, raw: Json, ready: Wanted) -> str:
        """The Ready condition of an identity the controller does not manage, written when it changed (a
        Warning Event when it says something new is wrong); a Synced condition from when it was managed goes."""
        status, generation = status_of(raw), int(raw["metadata"].get("generation") or 0)
        if reconcile.holds(status, [ready], generation) and not reconcile.condition_of(status, SYNCED):
            return ready.reason
        if ready.status:
            self.status.write(raw, IDENTITY, [ready], guard=True, drop=SYNCED)
        else:
            self.status.report(raw, IDENTITY, [ready], drop=SYNCED)
        return ready.reason

    # -- provisioning ------------------------------------------------------------------------

    def _provision(self, work: Pass, blueprint_of: BlueprintOf) -> str:
        identity = work.identity
        session = self.credentials.session(identity.ref.namespace, identity.spec.blueprint, blueprint_of)
        known = identity.spec.client_id or identity.status.client_id
        if known:
            current = self._call(session.graph.get, known)
            if current is None:
                message = steps.missing(identity, known, status_of(work.raw), self.now(),
                                        self.settings.replication_seconds)  # fmt: skip
                if not message:
                    log.info("%s: %s not readable yet (replication); waiting", identity.ref, known)
                    raise Retry("Replicating")
                raise Failure("NotFoundInEntra", message, unusable=True)
        else:
            found = self._find_or_create(work, session)
            if found is None:
                return "Provisioned"  # the next pass (our own status write wakes it) checks the rest
            current = found
        wrong = steps.not_of_blueprint(current, session.app_id, identity.spec.blueprint)
        if wrong:
            raise Failure("NotOfBlueprint", wrong, unusable=True)
        self._delete_duplicates(work, session, current)
        return self._bring_in_line(work, session, current)

    def _delete_duplicates(self, work: Pass, session: Session, current: EntraIdentity) -> None:
        """With the directory app: another identity carrying this resource's marker is a create whose answer
        came too late (after the window, when a second create was made); never used, it is deleted
        (soft, 30 days). A blueprint alone cannot list, so cannot find one."""
        if session.directory is None or work.identity.spec.client_id:
            return
        listed = self._call(session.directory.marked, session.app_id, [work.tag])
        for duplicate in reconcile.duplicates(listed, current):
            self._call(session.graph.delete, duplicate.id)
            message = (
                f"deleted agent identity {duplicate.id}, a second one carrying this resource's marker {work.tag} "
                f"(a create answered too late); {current.client_id} is the one in use (restorable for 30 days: "
                f"Graph POST /directory/deletedItems/{duplicate.id}/restore)"
            )
            self.status.announce(work.raw, IDENTITY, reconcile.Wanted(reconcile.SYNCED, True, "DuplicateDeleted",
                                                                      message), warning=True)  # fmt: skip

    def _bring_in_line(self, work: Pass, session: Session, current: EntraIdentity) -> str:
        identity = work.identity
        sponsors, refusal = self._sponsors(session, current.id)
        plan = reconcile.changes(current, sponsors, identity, work.tag, self.settings.graph_url)
        if session.directory is not None:
            for reference in plan.add:  # adds before removes: Entra refuses an identity with no sponsor
                self._call(session.directory.add_sponsor, current.id, reference)
            for sponsor_id in plan.remove:
                self._call(session.directory.remove_sponsor, current.id, sponsor_id)
        if plan.patch:
            self._call(session.graph.update, current.id, plan.patch)
        ready, synced = steps.provisioned(identity, current, session.app_id, plan, refusal, self.settings.graph_url)
        wanted = (synced, ready) if not synced.status else (ready, synced)  # the one that says most, first
        status, generation = status_of(work.raw), int(work.raw["metadata"].get("generation") or 0)
        recorded = status.get("clientId") == current.client_id and PENDING not in status
        if plan or not recorded or not reconcile.holds(status, wanted, generation):
            news = reconcile.is_news(status, wanted[0])
            work.raw = self.status.write(work.raw, IDENTITY, wanted, self._recorded(current), guard=True)
            if news:
                self.status.announce(work.raw, IDENTITY, wanted[0])
        return synced.reason

    def _sponsors(self, session: Session, object_id: str) -> tuple[list[str] | None, str | None]:
        """Entra's sponsors, or None and why when they may not be read (None, None: no directory app)."""
        if session.directory is None:
            return None, session.directory_problem or None
        try:
            return self._call(session.directory.sponsors, object_id), None
        except Failure as failure:
            if failure.reason == advice.DENIED:  # granted Read.All only: not a failure of the identity
                return None, failure.message
            raise

    def _find_or_create(self, work: Pass, session: Session) -> EntraIdentity | None:
        """The identity a create made for this resource before, or None after creating it now."""
        identity = work.identity
        intent = intent_of(status_of(work.raw))
        listed = None
        if session.directory is not None:
            markers = [work.tag, *([intent.marker] if intent else [])]
            listed = self._call(session.directory.marked, session.app_id, markers)
        step = reconcile.create_step(intent, listed, work.tag, self.now(), self.create_window)
        if isinstance(step, reconcile.Found):
            found = step.identity
            log.info("found %s in Entra by its marker: %s (no new one created)", identity.ref, found.id)
            ready = ready_and_synced(True, "Provisioned", steps.ready_message(found, session.app_id))
            work.raw = self.status.write(work.raw, IDENTITY, ready, self._recorded(found))
            return found
        if isinstance(step, reconcile.Wait):
            until = step.until.strftime(reconcile.TIME_FORMAT)
            message = (
                f"a create sent at {step.intent.since.strftime(reconcile.TIME_FORMAT)} has no answer on record and "
                f"Entra does not list its identity yet (lists lag creates): waiting until {until} before creating "
                "again, so that no duplicate is made"
            )
            wanted = ready_and_synced(False, "Creating", message)
            work.raw = self.status.report(work.raw, IDENTITY, wanted, warning=False)
            raise Retry("Creating", step.recheck)
        if isinstance(step, reconcile.Unresolved):
            self._confirm(work.raw)
            message = self._unconfirmed(identity.ref, step.intent, session, deleting=False)
            wanted = ready_and_synced(False, "CreateUnconfirmed", message)
            # Guarded: an intent read from a cache that is behind may have been cleared since.
            work.raw = self.status.report(work.raw, IDENTITY, wanted)
            raise Retry("CreateUnconfirmed")
        if step.expired is not None:
            log.warning("%s: the create intended at %s never showed up in Entra: creating again", identity.ref,
                        step.expired.since.strftime(reconcile.TIME_FORMAT))  # fmt: skip
        self._intend(work)
        created = self._create(work, session)
        log.info("created %s in Entra: %s", identity.ref, created.id)
        ready = ready_and_synced(True, "Provisioned", steps.ready_message(created, session.app_id))
        work.raw = self.status.write(work.raw, IDENTITY, ready, self._recorded(created))
        self.status.announce(work.raw, IDENTITY, ready[0], warning=False)
        return None

    def _create(self, work: Pass, session: Session) -> EntraIdentity:
        body = reconcile.create_body(work.identity, session.app_id, work.tag, self.settings.graph_url)
        try:
            return session.graph.create(body)
        except TokenError as error:  # asked for before the request: nothing was sent
            raise Failure.of_token(error.code, error.message, f"blueprint {session.app_id}") from None
        except GraphError as error:
            if not error.outcome_unknown:
                raise Failure.of_graph(error, forget_intent=True) from None
            failure = Failure.of_graph(error)
            then = (
                "the controller looks for it before it creates again"
                if session.directory is not None
                else "the controller does not create again until you say (the next condition says how)"
            )
            raise Failure(failure.reason, f"{failure.message}; the identity may have been created anyway: {then}",
                          failure.after) from None  # fmt: skip

    def _intend(self, work: Pass) -> None:
        """Record the create before sending it, guarded by the resourceVersion we read.

        If anything wrote the resource since (another replica, or our cache is behind), the API
        server answers 409 and nothing is created; the loop reads again. A 200 confirms the intent.
        """
        intent = {PENDING: reconcile.intent_status(work.tag, self.now())}
        # A condition written already is kept as it is: a retried create must not flap it or repeat its Event.
        wanted = (
            ()
            if reconcile.condition_of(status_of(work.raw))
            else ready_and_synced(False, "Creating", f"creating the agent identity in Entra (marker {work.tag})")
        )
        work.raw = self.status.write(work.raw, IDENTITY, wanted, intent, guard=True)
        if intent_of(status_of(work.raw)) is None:
            raise Failure(
                "CRDOutdated",
                "the API server dropped status.pendingCreate, so the AgentIdentity CRD predates this controller: "
                f"apply this version's CRDs ({INSTALL_CRDS}, or upgrade the chart); nothing is created until then",
            )

    def _unconfirmed(self, ref: ObjectRef, intent: Intent, session: Session, deleting: bool) -> str:
        since = intent.since.strftime(reconcile.TIME_FORMAT)
        message = advice.unconfirmed(ref, self.settings.graph_url, intent.marker, since, deleting)
        return (
            f"{message} (the directory app could not be used: {session.directory_problem})"
            if (session.directory_problem)
            else message
        )

    def _confirm(self, raw: Json) -> None:
        """Before telling an admin to look: is the intent still there, or was the watch cache behind (our own
        status write, say, on its way)? `Stale` runs the pass again on the API server's copy."""
        metadata = raw["metadata"]
        fresh = self.kube.read(IDENTITY, metadata["namespace"], metadata["name"])
        if fresh.get("metadata", {}).get("resourceVersion") != metadata.get("resourceVersion"):
            raise Stale(fresh)

    @staticmethod
    def _recorded(found: EntraIdentity) -> Json:
        """The id, with the intent it answers cleared in the same write."""
        return {"clientId": found.client_id, PENDING: None}

    # -- deletion ----------------------------------------------------------------------------

    def _delete(self, raw: Json, identity: Doomed, blueprint_of: BlueprintOf) -> str:
        if identity.retain:
            log.info("%s deleted; its Entra identity is retained (%s)", identity.ref, identity.client_id)
            return "Retained"
        intent = intent_of(status_of(raw))
        if identity.client_id is None and intent is None:  # every create is preceded by its intent
            log.info("%s deleted before any identity was created for it in Entra", identity.ref)
            return "Deleted"
        if self.kube.identity_crd_deleting():
            # Deleted with every other AgentIdentity, not on its own: the install is going, the identity stays.
            return RELEASED
        try:
            session = self.credentials.session(identity.ref.namespace, identity.blueprint, blueprint_of)
            tag = reconcile.marker(self.settings.cluster_name, str(raw["metadata"]["uid"]))
            listed = None
            if session.directory is not None and not identity.given_id:  # also what a lost create left behind
                markers = [tag, *([intent.marker] if intent else [])]
                listed = self._call(session.directory.marked, session.app_id, markers)
            step = reconcile.deletion_step(identity, intent, listed, tag, self.now(), self.create_window)
            if isinstance(step, reconcile.Wait):
                message = (
                    "deleted while a create's answer is missing and Entra does not list its identity yet: "
                    f"waiting until {step.until.strftime(reconcile.TIME_FORMAT)} so that it is deleted too"
                )
                self.status.report(raw, IDENTITY, ready_and_synced(False, "Deleting", message), warning=False)
                raise Retry("Deleting", step.recheck)
            if isinstance(step, reconcile.Unresolved):
                self._confirm(raw)
                message = self._unconfirmed(identity.ref, step.intent, session, deleting=True)
                self.status.report(raw, IDENTITY, ready_and_synced(False, "DeleteUnconfirmed", message))
                raise Retry("DeleteUnconfirmed")
            for object_id in step.ids:
                self._call(session.graph.delete, object_id)
                log.info("%s deleted; deleted %s in Entra (restorable for 30 days)", identity.ref, object_id)
        except Failure as failure:
            message = steps.deletion_failed(identity, failure.message)
            self.status.report(raw, IDENTITY, ready_and_synced(False, failure.reason, message))
            raise Retry(failure.reason, failure.after) from None
        return "Deleted"

    @staticmethod
    def _call(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A Graph call; its failure as a `Failure` that names the operation, the caller and the fix."""
        try:
            return function(*args, **kwargs)
        except GraphError as error:
            raise Failure.of_graph(error) from None
        except TokenError as error:  # a token renewed between calls
            raise Failure(error.code, f"{error.message} ({advice.token_advice(error.code)})") from None
