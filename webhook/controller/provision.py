"""One reconcile of one managed `AgentIdentity`: the cluster and Graph, in a crash-safe order.

1. Our finalizer first, so a deletion always comes back to us.
2. The id: `spec.clientId` (adoption), else `status.clientId`, else an object carrying our marker tag
   (a create whose answer was never recorded), else a create. Before the create is sent, the intent
   (`status.pendingCreate`: marker and time) is written, guarded by the resourceVersion we read; the
   id goes to the status at once, clearing the intent in the same write. An intent whose identity
   Entra does not list yet (its lists lag its creates) is waited for before a second create is risked.
3. Display name, marker and sponsors brought in line with the spec.
4. On deletion: delete in Entra (`deletionPolicy: Delete`) or leave it (`Retain`), then the finalizer.

Every failure ends as `Ready=False` with the error's code as reason, what to do in the message,
and an Event; then `Retry` asks the loop for a backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from webhook.common.models import (
    IDENTITY,
    READY,
    AgentBlueprint,
    AgentIdentity,
    ConfigObject,
    InvalidObject,
    ObjectRef,
    parse_resource,
)
from webhook.common.text import clip
from webhook.controller import reconcile
from webhook.controller.graph import BlueprintGraph, Graph, GraphError
from webhook.controller.kube import Kube, SecretUnavailable
from webhook.controller.reconcile import FINALIZER, PENDING, SYNCED, UNUSABLE, Doomed
from webhook.controller.settings import ControllerSettings
from webhook.controller.tokens import BlueprintLogin, TokenError, Tokens

log = logging.getLogger(__name__)

Json = dict[str, Any]
BlueprintOf = Callable[[str, str], ConfigObject | None]


class Retry(Exception):
    """Reported in the status already; try again after a backoff, or after `after` seconds."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


@dataclass(frozen=True)
class Failure(Exception):
    reason: str
    message: str
    after: float | None = None  # what Graph asked for (Retry-After)
    forget_intent: bool = False  # a create refused outright: nothing to wait for


class Provisioner:
    def __init__(
        self,
        kube: Kube,
        graph: Graph,
        tokens: Tokens,
        settings: ControllerSettings,
        controller_account: tuple[str, str],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.kube = kube
        self.graph = graph
        self.tokens = tokens
        self.settings = settings
        self.controller_account = controller_account
        self.now = now

    @property
    def create_window(self) -> float:
        """How long an unanswered create may take to show in Entra's list, counted from its intent."""
        return self.settings.http_timeout_seconds + self.settings.replication_seconds

    def reconcile(self, raw: Json, blueprint_of: BlueprintOf) -> str:
        """One pass; returns what it found or did (for metrics), or raises `Retry`."""
        parsed = parse_resource(IDENTITY, raw)
        metadata = raw["metadata"]
        finalizers = list(metadata.get("finalizers") or [])
        deleting = bool(metadata.get("deletionTimestamp"))
        if isinstance(parsed, InvalidObject):
            if deleting and FINALIZER in finalizers:
                doomed = reconcile.doomed_while_invalid(parsed.ref, raw)
                if doomed is None:
                    log.warning("%s deleted while invalid: its Entra identity is left as it is", parsed.ref)
                    outcome = "Released"
                else:
                    outcome = self._delete_in_entra(raw, doomed, blueprint_of)
                self.kube.set_finalizers(raw, [f for f in finalizers if f != FINALIZER])
                return outcome
            if not deleting and (FINALIZER in finalizers or (raw.get("spec") or {}).get("sponsors")):
                self._report(raw, False, "InvalidSpec", parsed.message)
                raise Retry("InvalidSpec")
            return "Invalid"
        assert isinstance(parsed, AgentIdentity)
        try:
            if deleting or not parsed.spec.managed:
                if FINALIZER not in finalizers:
                    return "Unmanaged"
                # deleted, or no longer managed (its Entra object is left as it is)
                outcome = self._delete_in_entra(raw, reconcile.doomed(parsed), blueprint_of) if deleting else "Released"
                self.kube.set_finalizers(raw, [f for f in finalizers if f != FINALIZER])
                return outcome
            if FINALIZER not in finalizers:
                raw = self.kube.set_finalizers(raw, [*finalizers, FINALIZER])
            return self._provision(raw, parsed, blueprint_of)
        except Failure as failure:
            extra = {PENDING: None} if failure.forget_intent else None
            # An identity Pods can use stays Ready while only keeping it in line with the spec fails
            # (Graph or the token endpoint down, a sponsor that does not exist): the sidecar needs
            # the blueprint's credential and this id, not the controller.
            usable = self._usable(raw, parsed) and failure.reason not in UNUSABLE
            self._report(raw, False, failure.reason, failure.message, extra=extra, only_synced=usable)
            raise Retry(failure.reason, failure.after) from None

    # -- provisioning ------------------------------------------------------------------------

    def _provision(self, raw: Json, identity: AgentIdentity, blueprint_of: BlueprintOf) -> str:
        blueprint = self._blueprint(identity.ref.namespace, identity.spec.blueprint, blueprint_of)
        graph = self._graph(blueprint)
        app_id = str(blueprint.spec.client_id)
        tag = reconcile.marker(self.settings.cluster_name, str(raw["metadata"]["uid"]))
        status = reconcile.status_of(raw)
        known = identity.spec.client_id or identity.status.client_id
        if known:
            current = self._call(graph.get, known)
            if current is None:
                self._missing(raw, known, identity)
        else:
            current = self._find_or_create(raw, identity, graph, app_id, tag)
            if current is None:
                return "Provisioned"  # the next pass (our own status write wakes it) checks sponsors and name
        if current.get("agentIdentityBlueprintId") != app_id:
            raise Failure(
                "NotOfBlueprint",
                f"agent identity {current.get('id')} belongs to blueprint {current.get('agentIdentityBlueprintId')}, "
                f'not to "{identity.spec.blueprint}" ({app_id}): name an identity of this blueprint in spec.clientId',
            )
        object_id = str(current["id"])
        wanted = reconcile.changes(
            current, self._call(graph.sponsors, object_id), identity, tag, self.settings.graph_url
        )
        for reference in wanted.add:  # adds before removes: Entra refuses an identity with no sponsor
            self._call(graph.add_sponsor, object_id, reference)
        for sponsor_id in wanted.remove:
            self._call(graph.remove_sponsor, object_id, sponsor_id)
        if wanted.patch:
            self._call(graph.update, object_id, wanted.patch)
        reason = "Adopted" if identity.spec.client_id else "Provisioned"
        if wanted or status.get("clientId") != object_id or not self._is_ready(raw, reason):
            self._write(raw, object_id, True, reason, self._ready_message(current, app_id))
        return reason

    def _find_or_create(
        self, raw: Json, identity: AgentIdentity, graph: BlueprintGraph, app_id: str, tag: str
    ) -> Json | None:
        """The identity a create made for this resource before, or None after creating it now."""
        intent = reconcile.intent_of(reconcile.status_of(raw))
        listed = self._call(lambda: list(graph.list_for_blueprint(app_id)))
        step = reconcile.create_step(intent, listed, tag, self.now(), self.create_window)
        if isinstance(step, reconcile.Found):
            found = step.identity
            log.info("found %s in Entra by its marker: %s (no new one created)", identity.ref, found["id"])
            self._write(raw, str(found["id"]), True, "Provisioned", self._ready_message(found, app_id))
            return found
        if isinstance(step, reconcile.Wait):
            until = step.until.strftime(reconcile.TIME_FORMAT)
            message = (
                f"a create sent at {step.intent.since.strftime(reconcile.TIME_FORMAT)} has no answer on record and "
                f"Entra does not list its identity yet (lists lag creates): waiting until {until} before creating "
                "again, so that no duplicate is made"
            )
            self._report(raw, False, "Creating", message, warning=False, guard=True)
            raise Retry("Creating", step.recheck)
        if step.expired is not None:
            log.warning("%s: the create intended at %s never showed up in Entra: creating again", identity.ref,
                        step.expired.since.strftime(reconcile.TIME_FORMAT))  # fmt: skip
        self._intend(raw, tag)
        try:
            created = graph.create(reconcile.create_body(identity, app_id, tag, self.settings.graph_url))
        except GraphError as error:
            failure = self._graph_failure(error)
            if error.outcome_unknown:
                raise Failure(
                    failure.reason,
                    f"{failure.message}; the identity may have been created anyway: the controller looks for it "
                    "before it creates again",
                    failure.after,
                ) from None
            raise Failure(failure.reason, failure.message, failure.after, forget_intent=True) from None
        log.info("created %s in Entra: %s", identity.ref, created.get("id"))
        self._write(raw, str(created["id"]), True, "Provisioned", self._ready_message(created, app_id))
        self.kube.event(raw, IDENTITY, "Provisioned", self._ready_message(created, app_id), warning=False)
        return None

    def _intend(self, raw: Json, tag: str) -> None:
        """Record the create before sending it, guarded by the resourceVersion we read.

        If anything wrote the resource since (another replica, or our cache is behind), the API
        server answers 409 and nothing is created; the loop reads again. A 200 confirms the intent.
        """
        intent = {PENDING: reconcile.intent_status(tag, self.now())}
        if self._condition(raw):  # kept as it is: a retried create must not flap it or repeat its Event
            self._patch(raw, intent, guard=True)
        else:
            message = f"creating the agent identity in Entra (marker {tag})"
            self._write(raw, None, False, "Creating", message, extra=intent, guard=True)
        if reconcile.intent_of(reconcile.status_of(raw)) is None:
            raise Failure(
                "CRDOutdated",
                "the API server dropped status.pendingCreate, so the AgentIdentity CRD predates this controller: "
                "apply this version's CRDs (kubectl apply -k manifests/); nothing is created until then",
            )

    def _missing(self, raw: Json, known: str, identity: AgentIdentity) -> None:
        """Not found: right after a create that is replication; later, someone deleted it."""
        since = reconcile.ready_since(raw.get("status"))
        fresh = since is not None and (self.now() - since).total_seconds() < self.settings.replication_seconds
        if fresh and identity.status.client_id == known:
            log.info("%s: %s not readable yet (replication); waiting", identity.ref, known)
            raise Retry("Replicating")
        where = "spec.clientId" if identity.spec.client_id else "status.clientId"
        raise Failure(
            "NotFoundInEntra",
            f"agent identity {known} ({where}) does not exist in Entra: restore it within 30 days "
            f"(Graph: POST /directory/deletedItems/{known}/restore), or "
            + (
                "give the id of an existing one"
                if identity.spec.client_id
                else "delete and re-create this AgentIdentity"
            ),
        )

    def _ready_message(self, obj: Json, app_id: str) -> str:
        return f"agent identity {obj.get('id')} ({obj.get('displayName')}) exists in Entra under blueprint {app_id}"

    def _is_ready(self, raw: Json, reason: str) -> bool:
        """Ready and Synced, for this reason and generation."""
        return all(
            condition.get("status") == "True"
            and condition.get("reason") == reason
            and condition.get("observedGeneration") == raw["metadata"].get("generation")
            for condition in (self._condition(raw), self._condition(raw, SYNCED))
        )

    def _usable(self, raw: Json, identity: AgentIdentity) -> bool:
        recorded = identity.spec.client_id or reconcile.status_of(raw).get("clientId")
        return bool(recorded) and self._condition(raw).get("status") == "True"

    # -- deletion ----------------------------------------------------------------------------

    def _delete_in_entra(self, raw: Json, identity: Doomed, blueprint_of: BlueprintOf) -> str:
        if identity.retain:
            log.info("%s deleted; its Entra identity is retained (%s)", identity.ref, identity.client_id)
            return "Retained"
        intent = reconcile.intent_of(reconcile.status_of(raw))
        if identity.client_id is None and intent is None:  # every create is preceded by its intent
            log.info("%s deleted before any identity was created for it in Entra", identity.ref)
            return "Deleted"
        try:
            blueprint = self._blueprint(identity.ref.namespace, identity.blueprint, blueprint_of)
            graph = self._graph(blueprint)
            tag = reconcile.marker(self.settings.cluster_name, str(raw["metadata"]["uid"]))
            doomed = {identity.client_id} if identity.client_id else set()
            if not identity.given_id:  # also what a create left behind before its status write
                listed = self._call(lambda: list(graph.list_for_blueprint(str(blueprint.spec.client_id))))
                step = reconcile.create_step(intent, listed, tag, self.now(), self.create_window)
                if isinstance(step, reconcile.Wait) and not doomed:
                    message = (
                        "deleted while a create's answer is missing and Entra does not list its identity yet: "
                        f"waiting until {step.until.strftime(reconcile.TIME_FORMAT)} so that it is deleted too"
                    )
                    self._report(raw, False, "Deleting", message, warning=False, guard=True)
                    raise Retry("Deleting", step.recheck)
                markers = [tag, *([intent.marker] if intent else [])]
                doomed |= {str(found["id"]) for found in reconcile.find_marked(listed, *markers)}
            for object_id in sorted(i for i in doomed if i):
                self._call(graph.delete, object_id)
                log.info("%s deleted; deleted %s in Entra (restorable for 30 days)", identity.ref, object_id)
        except Failure as failure:
            ref = f"agentidentity {identity.ref.name} -n {identity.ref.namespace}"
            message = (
                f"cannot delete the agent identity in Entra: {failure.message}. Fix that; or keep it in Entra: "
                f"""kubectl patch {ref} --type=merge -p '{{"spec":{{"deletionPolicy":"Retain"}}}}'; or delete it """
                f"""yourself and remove the finalizer: kubectl patch {ref} --type=merge """
                """-p '{"metadata":{"finalizers":null}}'"""
            )
            self._report(raw, False, failure.reason, message)
            raise Retry(failure.reason, failure.after) from None
        return "Deleted"

    # -- the blueprint and its credential ----------------------------------------------------

    def _blueprint(self, namespace: str, name: str, blueprint_of: BlueprintOf) -> AgentBlueprint:
        found = blueprint_of(namespace, name)
        if found is None:
            raise Failure("BlueprintNotFound", f'namespace "{namespace}" has no AgentBlueprint "{name}": create it')
        if not isinstance(found, AgentBlueprint):
            raise Failure("BlueprintInvalid", f"{getattr(found, 'message', found)}")
        spec = found.spec
        if not (spec.tenant_id and spec.client_id and spec.credential):
            raise Failure(
                "BlueprintIncomplete",
                f'AgentBlueprint "{found.ref.name}" needs tenantId, clientId and credential for the controller to '
                "act as it (envFrom is for the sidecar only)",
            )
        return found

    def _graph(self, blueprint: AgentBlueprint) -> BlueprintGraph:
        spec = blueprint.spec
        assert spec.tenant_id
        assert spec.client_id
        assert spec.credential
        secret: str | None = None
        if spec.credential.client_secret is not None:
            reference = spec.credential.client_secret
            ref = ObjectRef("Secret", blueprint.ref.namespace, reference.secret_name)
            try:
                secret = self.kube.secret_value(ref, reference.key)
            except SecretUnavailable as error:
                raise self._secret_failure(ref, error) from None
        login = BlueprintLogin(spec.tenant_id, spec.client_id, spec.instance, secret)
        try:
            self.tokens.token(login)  # fail here, with the AADSTS code, rather than inside a Graph call
        except TokenError as error:
            raise Failure(error.code, f"token request as blueprint {spec.client_id} failed: {error.message} "
                          f"({reconcile.token_advice(error.code)})") from None  # fmt: skip
        return self.graph.as_blueprint(self.tokens.provider(login))

    def _secret_failure(self, ref: ObjectRef, error: SecretUnavailable) -> Failure:
        where = f'Secret "{ref.name}" in namespace "{ref.namespace}"'
        if error.status == 403:
            return Failure(
                "SecretAccessDenied",
                f"the controller may not read {where} (it reads no Secret it is not granted): "
                f"{reconcile.grant_commands(ref, self.controller_account)}",
            )
        if error.status == 404:
            return Failure("SecretNotFound", f"{where} does not exist: create it with the blueprint's client secret")
        return Failure("SecretUnreadable", f"{where} {error}")

    def _call(self, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except GraphError as error:
            raise self._graph_failure(error) from None
        except TokenError as error:
            raise Failure(error.code, f"{error.message} ({reconcile.token_advice(error.code)})") from None

    def _graph_failure(self, error: GraphError) -> Failure:
        answered = f"Graph answered {error.status} {error.code}" if error.status else f"no answer ({error.code})"
        return Failure(
            error.code, f"{answered}: {error.message} ({reconcile.graph_advice(error.code)})", error.retry_after
        )

    # -- status and Events -------------------------------------------------------------------

    def _write(
        self,
        raw: Json,
        client_id: str | None,
        ready: bool,
        reason: str,
        message: str,
        extra: Json | None = None,
        guard: bool = False,
        only_synced: bool = False,
    ) -> None:
        """A status merge patch of Ready and Synced (or only Synced); with `guard`, only if nothing wrote the
        resource since we read it (else 409). Writing an id clears the intent in the same patch.
        """
        metadata = raw["metadata"]
        generation, now = int(metadata.get("generation") or 0), self.now()
        conditions = reconcile.status_of(raw).get("conditions")
        for kind in (SYNCED,) if only_synced else (READY, SYNCED):
            conditions = reconcile.conditions(conditions, kind, ready, reason, message, generation, now)
        status: Json = {"conditions": conditions, **(extra or {})}
        if client_id:
            status["clientId"] = client_id
            status[PENDING] = None
        self._patch(raw, status, guard)

    def _patch(self, raw: Json, status: Json, guard: bool) -> None:
        metadata = raw["metadata"]
        version = metadata["resourceVersion"] if guard else None
        updated = self.kube.patch_status(IDENTITY, metadata["namespace"], metadata["name"], status, version)
        raw["status"] = updated.get("status", {k: v for k, v in status.items() if v is not None})
        raw["metadata"] = updated.get("metadata", metadata)

    def _condition(self, raw: Json, kind: str = READY) -> Json:
        """The condition of this type we wrote last, or an empty one."""
        conditions = reconcile.status_of(raw).get("conditions") or []
        return next((c for c in conditions if isinstance(c, dict) and c.get("type") == kind), {})

    def _report(
        self,
        raw: Json,
        ready: bool,
        reason: str,
        message: str,
        *,
        warning: bool | None = None,
        extra: Json | None = None,
        guard: bool = False,
        only_synced: bool = False,
    ) -> None:
        """Write the condition(s), and an Event when it is news (a new reason or message)."""
        old = self._condition(raw, SYNCED if only_synced else READY)
        news = (old.get("reason"), old.get("message")) != (reason, clip(message, reconcile.MESSAGE_LIMIT - 1))
        try:
            self._write(raw, None, ready, reason, message, extra, guard, only_synced)
        except ApiException as error:
            if guard and error.status == 409:
                return  # what we read is out of date: the next pass reads again
            log.warning("could not write the status of %s/%s: %s", raw["metadata"].get("namespace"),
                        raw["metadata"].get("name"), error.status)  # fmt: skip
        if news:
            warning = not ready if warning is None else warning
            name = f"{raw['metadata'].get('namespace')}/{raw['metadata'].get('name')}"
            log.log(logging.WARNING if warning else logging.INFO, "%s: %s: %s", name, reason, message)
            self.kube.event(raw, IDENTITY, reason, message, warning=warning)
