"""One reconcile of one managed `AgentIdentity`: the cluster and Graph, in a crash-safe order.

1. Our finalizer first, so a deletion always comes back to us.
2. The id: `spec.clientId` (adoption), else `status.clientId`, else an object carrying our marker tag
   (a create whose status write never happened), else a create, whose id goes to the status at once.
3. Display name, marker and sponsors brought in line with the spec.
4. On deletion: delete in Entra (`deletionPolicy: Delete`) or leave it (`Retain`), then the finalizer.

Every failure ends as `Ready=False` with the error's code as reason, what to do in the message,
and an Event; then `Retry` asks the loop for a backoff.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from webhook.controller import reconcile
from webhook.controller.graph import BlueprintGraph, Graph, GraphError
from webhook.controller.kube import Kube, SecretUnavailable
from webhook.controller.reconcile import FINALIZER
from webhook.controller.settings import ControllerSettings
from webhook.controller.tokens import BlueprintLogin, TokenError, Tokens
from webhook.models import (
    IDENTITY,
    READY,
    AgentBlueprint,
    AgentIdentity,
    ConfigObject,
    InvalidObject,
    ObjectRef,
    parse_object,
)

log = logging.getLogger(__name__)

Json = dict[str, Any]
# Test-only: exit right after Graph answered a create, before the status write (the e2e crash test).
CRASH_AFTER_CREATE = "ENTRA_CONTROLLER_TEST_CRASH_AFTER_CREATE"


class Retry(Exception):
    """Reported in the status already; try again after a backoff."""


@dataclass(frozen=True)
class Failure(Exception):
    reason: str
    message: str


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

    def reconcile(self, raw: Json, blueprint_of: Callable[[str, str], ConfigObject | None]) -> None:
        parsed = parse_object({"apiVersion": "entra.io/v1alpha1", "kind": IDENTITY, **raw})
        metadata = raw["metadata"]
        finalizers = list(metadata.get("finalizers") or [])
        deleting = bool(metadata.get("deletionTimestamp"))
        if isinstance(parsed, InvalidObject):
            if deleting and FINALIZER in finalizers:
                log.warning("%s deleted while invalid: its Entra identity is left as it is", parsed.ref)
                self.kube.set_finalizers(raw, [f for f in finalizers if f != FINALIZER])
            elif not deleting and (FINALIZER in finalizers or (raw.get("spec") or {}).get("sponsors")):
                self._report(raw, False, "InvalidSpec", parsed.message)
                raise Retry("InvalidSpec")
            return
        assert isinstance(parsed, AgentIdentity)
        if deleting or not parsed.spec.managed:
            if FINALIZER in finalizers:  # deleted, or no longer managed (its Entra object is left as it is)
                if deleting:
                    self._delete_in_entra(raw, parsed, blueprint_of)
                self.kube.set_finalizers(raw, [f for f in finalizers if f != FINALIZER])
            return
        if FINALIZER not in finalizers:
            raw = self.kube.set_finalizers(raw, [*finalizers, FINALIZER])
        try:
            self._provision(raw, parsed, blueprint_of)
        except Failure as failure:
            self._report(raw, False, failure.reason, failure.message)
            raise Retry(failure.reason) from None

    # -- provisioning ------------------------------------------------------------------------

    def _provision(
        self, raw: Json, identity: AgentIdentity, blueprint_of: Callable[[str, str], ConfigObject | None]
    ) -> None:
        blueprint = self._blueprint(identity, blueprint_of)
        graph = self._graph(blueprint)
        app_id = str(blueprint.spec.client_id)
        tag = reconcile.marker(self.settings.cluster_name, str(raw["metadata"]["uid"]))
        status = reconcile.status_of(raw)
        known = identity.spec.client_id or identity.status.client_id
        current: Json | None = None
        if known:
            current = self._call(graph.get, known)
            if current is None:
                self._missing(raw, known, identity)
                return
        else:
            marked = reconcile.find_marked(self._call(lambda: list(graph.list_for_blueprint(app_id))), tag)
            if marked:
                current = marked[0]
                log.info("found %s in Entra by its marker: %s (no new one created)", identity.ref, current["id"])
                self._write(raw, str(current["id"]), True, "Provisioned", self._ready_message(current, app_id))
            else:
                created = self._call(
                    graph.create, reconcile.create_body(identity, app_id, tag, self.settings.graph_url)
                )
                if os.environ.get(CRASH_AFTER_CREATE) == "1":
                    os._exit(86)
                log.info("created %s in Entra: %s", identity.ref, created.get("id"))
                self._write(raw, str(created["id"]), True, "Provisioned", self._ready_message(created, app_id))
                self.kube.event(raw, IDENTITY, "Provisioned", self._ready_message(created, app_id), warning=False)
                return  # the next pass (our own status write wakes it) checks sponsors and name
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
        status = reconcile.status_of(raw)
        generation = raw["metadata"].get("generation")
        for condition in status.get("conditions") or []:
            if isinstance(condition, dict) and condition.get("type") == READY:
                return bool(
                    condition.get("status") == "True"
                    and condition.get("reason") == reason
                    and condition.get("observedGeneration") == generation
                )
        return False

    # -- deletion ----------------------------------------------------------------------------

    def _delete_in_entra(
        self, raw: Json, identity: AgentIdentity, blueprint_of: Callable[[str, str], ConfigObject | None]
    ) -> None:
        if not identity.spec.managed or identity.spec.deletion_policy == "Retain":
            log.info("%s deleted; its Entra identity is retained (%s)", identity.ref, identity.client_id)
            return
        try:
            blueprint = self._blueprint(identity, blueprint_of)
            graph = self._graph(blueprint)
            tag = reconcile.marker(self.settings.cluster_name, str(raw["metadata"]["uid"]))
            doomed = {identity.client_id} if identity.client_id else set()
            if not identity.spec.client_id:  # also what a create left behind before its status write
                listed = self._call(lambda: list(graph.list_for_blueprint(str(blueprint.spec.client_id))))
                doomed |= {str(found["id"]) for found in reconcile.find_marked(listed, tag)}
            for object_id in sorted(i for i in doomed if i):
                self._call(graph.delete, object_id)
                log.info("%s deleted; deleted %s in Entra (restorable for 30 days)", identity.ref, object_id)
        except Failure as failure:
            message = (
                f"cannot delete the agent identity in Entra: {failure.message}. Fix that, or delete it yourself and "
                f"remove the finalizer: kubectl patch agentidentity {identity.ref.name} -n {identity.ref.namespace} "
                """--type=merge -p '{"metadata":{"finalizers":null}}'"""
            )
            self._report(raw, False, failure.reason, message)
            raise Retry(failure.reason) from None

    # -- the blueprint and its credential ----------------------------------------------------

    def _blueprint(
        self, identity: AgentIdentity, blueprint_of: Callable[[str, str], ConfigObject | None]
    ) -> AgentBlueprint:
        found = blueprint_of(identity.ref.namespace, identity.spec.blueprint)
        if found is None:
            raise Failure(
                "BlueprintNotFound",
                f'namespace "{identity.ref.namespace}" has no AgentBlueprint "{identity.spec.blueprint}": create it',
            )
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
            raise Failure(error.code, f"Graph answered {error.status} {error.code}: {error.message} "
                          f"({reconcile.graph_advice(error.code)})") from None  # fmt: skip
        except TokenError as error:
            raise Failure(error.code, f"{error.message} ({reconcile.token_advice(error.code)})") from None

    # -- status and Events -------------------------------------------------------------------

    def _write(self, raw: Json, client_id: str | None, ready: bool, reason: str, message: str) -> None:
        metadata = raw["metadata"]
        previous = reconcile.status_of(raw).get("conditions")
        status: Json = {
            "conditions": reconcile.conditions(
                previous, READY, ready, reason, message, int(metadata.get("generation") or 0), self.now()
            )
        }
        if client_id:
            status["clientId"] = client_id
        updated = self.kube.patch_status(IDENTITY, metadata["namespace"], metadata["name"], status)
        raw["status"] = updated.get("status", status)
        raw["metadata"] = updated.get("metadata", metadata)

    def _report(self, raw: Json, ready: bool, reason: str, message: str) -> None:
        """Write the condition, and an Event when it is news (a new reason or message)."""
        old = next(
            (
                c
                for c in (reconcile.status_of(raw).get("conditions") or [])
                if isinstance(c, dict) and c.get("type") == READY
            ),
            {},
        )
        news = (old.get("reason"), old.get("message")) != (reason, reconcile.bounded(message))
        try:
            self._write(raw, None, ready, reason, message)
        except ApiException as error:
            log.warning("could not write the status of %s/%s: %s", raw["metadata"].get("namespace"),
                        raw["metadata"].get("name"), error.status)  # fmt: skip
        if news:
            log.warning("%s/%s: %s: %s", raw["metadata"].get("namespace"), raw["metadata"].get("name"), reason, message)
            self.kube.event(raw, IDENTITY, reason, message, warning=not ready)
