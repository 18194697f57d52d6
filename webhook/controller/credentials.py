"""The credentials one pass acts with: the blueprint's own, and the optional directory app's.

A blueprint signs in with its client secret (the one Secret the controller is granted) or with the
controller's projected token (workload identity); the directory app always with the projected
token, in the blueprint's tenant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from webhook.common.models import AgentBlueprint, ConfigObject, ObjectRef
from webhook.controller import advice
from webhook.controller.failure import Failure
from webhook.controller.graph import BlueprintGraph, DirectoryGraph, Graph
from webhook.controller.kube import Kube, SecretUnavailable
from webhook.controller.readiness import ACCESS_DENIED, blueprint_problem
from webhook.controller.settings import ControllerSettings
from webhook.controller.tokens import AppLogin, TokenError, Tokens

log = logging.getLogger(__name__)

BlueprintOf = Callable[[str, str], ConfigObject | None]


@dataclass(frozen=True)
class Session:
    """The credentials one pass acts with for one blueprint."""

    blueprint: AgentBlueprint
    app_id: str
    graph: BlueprintGraph
    directory: DirectoryGraph | None  # the directory app, when configured and its token came
    directory_problem: str = ""  # why a configured directory app could not be used


class Credentials:
    def __init__(
        self,
        kube: Kube,
        graph: Graph,
        tokens: Tokens,
        settings: ControllerSettings,
        controller_account: tuple[str, str],
    ) -> None:
        self.kube = kube
        self.graph = graph
        self.tokens = tokens
        self.settings = settings
        self.controller_account = controller_account

    def session(self, namespace: str, name: str, blueprint_of: BlueprintOf) -> Session:
        """The blueprint's credential, its token asked for now (to fail here, with the AADSTS code), and the
        directory app's when configured: a directory app whose token fails is left out, and says why."""
        blueprint = self._blueprint(namespace, name, blueprint_of)
        spec = blueprint.spec
        assert spec.tenant_id
        assert spec.client_id
        login = AppLogin(spec.tenant_id, spec.client_id, spec.instance, self._secret(blueprint))
        try:
            self.tokens.token(login)
        except TokenError as error:
            raise Failure.of_token(error.code, error.message, f"blueprint {spec.client_id}") from None
        graph = self.graph.as_blueprint(spec.client_id, self.tokens.provider(login))
        directory_id = self.settings.directory_client_id
        if directory_id is None:
            return Session(blueprint, spec.client_id, graph, None)
        directory = AppLogin(spec.tenant_id, directory_id, spec.instance, None)  # the controller's token file
        try:
            self.tokens.token(directory)
        except TokenError as error:
            who = f"directory app {directory_id}"
            problem = Failure.of_token(error.code, error.message, who, directory=True).message
            log.warning("%s: %s", blueprint.ref, problem)
            return Session(blueprint, spec.client_id, graph, None, f"{error.code}: {problem}")
        return Session(
            blueprint, spec.client_id, graph, self.graph.as_directory(directory_id, self.tokens.provider(directory))
        )

    def _blueprint(self, namespace: str, name: str, blueprint_of: BlueprintOf) -> AgentBlueprint:
        found = blueprint_of(namespace, name)
        problem = blueprint_problem(namespace, name, found)
        if problem is not None:
            raise problem
        assert isinstance(found, AgentBlueprint)
        spec = found.spec
        if not (spec.tenant_id and spec.client_id and spec.credential):
            raise Failure(
                "BlueprintIncomplete",
                f'AgentBlueprint "{found.ref.name}" needs tenantId, clientId and credential for the controller to '
                "act as it (envFrom is for the sidecar only)",
            )
        return found

    def secret_problem(self, blueprint: AgentBlueprint) -> Failure | None:
        """What is wrong with a client-secret blueprint's Secret as the controller reads it, or None (the key is
        there, or the blueprint has no client secret). The value read is dropped at once."""
        try:
            self._secret(blueprint)
        except Failure as failure:
            return failure
        return None

    def _secret(self, blueprint: AgentBlueprint) -> str | None:
        """A client-secret blueprint's secret (None: workload identity, the token file)."""
        credential = blueprint.spec.credential
        if credential is None or credential.client_secret is None:
            return None
        reference = credential.client_secret
        ref = ObjectRef("Secret", blueprint.ref.namespace, reference.secret_name)
        try:
            return self.kube.secret_value(ref, reference.key)
        except SecretUnavailable as error:
            raise self._secret_failure(ref, error, reference.key, blueprint.ref.name) from None

    def _secret_failure(self, ref: ObjectRef, error: SecretUnavailable, key: str, blueprint: str) -> Failure:
        where = f'Secret "{ref.name}" in namespace "{ref.namespace}"'
        if error.status == 403:
            return Failure(
                ACCESS_DENIED,
                f"the controller may not read {where} (it reads no Secret it is not granted): "
                f"{advice.grant_commands(ref, self.controller_account)}",
            )
        if error.status == 404:
            return Failure(
                "SecretNotFound",
                f"{where} does not exist: create it with the blueprint's client secret: kubectl create secret "
                f"generic {ref.name} -n {ref.namespace} --from-literal={key}=...",
            )
        if error.missing_key:
            return Failure(
                "SecretKeyNotFound",
                f'{where} has no key "{key}" ({error}): add it, or fix spec.credential.clientSecret.key of '
                f'AgentBlueprint "{blueprint}"',
            )
        return Failure("SecretUnreadable", f"could not read {where}: {error}; the controller tries again")
