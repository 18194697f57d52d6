"""The controller's Kubernetes calls: finalizers, status, Events, one Secret, the issuer, its own install."""

from __future__ import annotations

import base64
import copy
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.common.events import event
from webhook.common.kubeapi import api_errors, describe_api_error
from webhook.common.models import GROUP, IDENTITY, PLURALS, VERSION, ObjectRef
from webhook.common.text import listing, quoted

log = logging.getLogger(__name__)

COMPONENT = "entra-controller"
MERGE = "application/merge-patch+json"
TIMEOUT = 10
Json = dict[str, Any]


IDENTITY_CRD = f"{PLURALS[IDENTITY]}.{GROUP}"


@dataclass(frozen=True)
class Held:
    """What the controller reads of one object of its own install: enough to hold it with a finalizer."""

    finalizers: tuple[str, ...]
    deleting: bool
    version: str


class SecretUnavailable(Exception):
    """Why a Secret could not be used: its HTTP status (0: no answer), a bounded description."""

    def __init__(self, status: int, message: str, missing_key: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.missing_key = missing_key


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.objects = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.host = socket.gethostname()

    def set_finalizers(self, raw: Json, finalizers: list[str]) -> Json:
        """A merge patch guarded by the resourceVersion we read (409 if someone changed it since)."""
        metadata = raw["metadata"]
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": metadata["resourceVersion"]}}
        updated: Json = self.objects.patch_namespaced_custom_object(
            GROUP, VERSION, metadata["namespace"], PLURALS[IDENTITY], metadata["name"], patch,
            _content_type=MERGE, _request_timeout=TIMEOUT,
        )  # fmt: skip
        return updated

    def identity_crd_deleting(self) -> bool:
        """Whether the AgentIdentity CRD is being deleted (which deletes every AgentIdentity with it)."""
        crd = client.ApiextensionsV1Api(self.api).read_custom_resource_definition(
            IDENTITY_CRD, _request_timeout=TIMEOUT
        )
        return crd.metadata.deletion_timestamp is not None

    def install_object(self, kind: str, name: str, namespace: str = "") -> Held | None:
        """One object of the controller's install: its ClusterRole, ClusterRoleBinding or ServiceAccount (None:
        gone)."""
        try:
            if kind == "ServiceAccount":
                found = self.core.read_namespaced_service_account(name, namespace, _request_timeout=TIMEOUT)
            elif kind == "ClusterRole":
                found = self.rbac.read_cluster_role(name, _request_timeout=TIMEOUT)
            else:
                found = self.rbac.read_cluster_role_binding(name, _request_timeout=TIMEOUT)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        metadata = found.metadata
        return Held(tuple(metadata.finalizers or ()), metadata.deletion_timestamp is not None,
                    str(metadata.resource_version))  # fmt: skip

    def with_fresh_token(self, namespace: str, name: str) -> Kube:
        """The same client with a token just issued for this account (TokenRequest)."""
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": 600}}  # fmt: skip
        issued = self.core.create_namespaced_service_account_token(name, namespace, request, _request_timeout=TIMEOUT)
        configuration = copy.copy(self.api.configuration)
        configuration.api_key = {"authorization": f"Bearer {issued.status.token}"}
        configuration.api_key_prefix = {}
        configuration.refresh_api_key_hook = None
        return Kube(client.ApiClient(configuration))

    def set_install_finalizers(self, kind: str, name: str, namespace: str, held: Held, finalizers: list[str]) -> None:
        """A merge patch of the finalizers, guarded by the version read (409 if it changed since)."""
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": held.version}}
        options: Json = {"_content_type": MERGE, "_request_timeout": TIMEOUT}
        if kind == "ServiceAccount":
            self.core.patch_namespaced_service_account(name, namespace, patch, **options)
        elif kind == "ClusterRole":
            self.rbac.patch_cluster_role(name, patch, **options)
        else:
            self.rbac.patch_cluster_role_binding(name, patch, **options)

    def read(self, kind: str, namespace: str, name: str) -> Json:
        """The resource as the API server has it now (not as a watch cache last saw it)."""
        found: Json = self.objects.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, _request_timeout=TIMEOUT
        )
        return found

    def patch_status(
        self, kind: str, namespace: str, name: str, status: Json, resource_version: str | None = None
    ) -> Json:
        """A merge patch of the status; with `resource_version`, 409 unless the object is still at it."""
        patch: Json = {"status": status}
        if resource_version is not None:
            patch["metadata"] = {"resourceVersion": resource_version}
        updated: Json = self.objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURALS[kind], name, patch, _content_type=MERGE, _request_timeout=TIMEOUT
        )
        return updated

    def event(self, raw: Json, kind: str, reason: str, message: str, warning: bool) -> None:
        """An Event on the resource; a failure to record one is logged, never raised."""
        metadata = raw.get("metadata", {})
        involved = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "uid": metadata.get("uid"),
            "resourceVersion": metadata.get("resourceVersion"),
        }
        body = event(involved, reason, message, warning=warning, component=COMPONENT, instance=self.host)
        try:
            self.core.create_namespaced_event(metadata.get("namespace"), body, _request_timeout=TIMEOUT)
        except (ApiException, OSError) as error:
            log.warning("could not record Event %s on %s/%s: %s", reason, metadata.get("namespace"),
                        metadata.get("name"), error)  # fmt: skip

    def secret_value(self, ref: ObjectRef, key: str) -> str:
        """The one Secret a client-secret blueprint names; the value never leaves this process."""
        try:
            secret = self.core.read_namespaced_secret(ref.name, ref.namespace, _request_timeout=TIMEOUT)
        except api_errors() as error:  # a refusal, or no answer (never the client's raw exception text)
            raise SecretUnavailable(getattr(error, "status", 0) or 0, describe_api_error(error)) from None
        data = secret.data or {}
        if key not in data:
            have = listing(quoted(name) for name in sorted(data)) or "none"
            raise SecretUnavailable(422, f"it has: {have}", missing_key=True)
        return base64.b64decode(data[key]).decode().strip()

    def issuer(self) -> str:
        """The cluster's service-account issuer, from the API server's OIDC discovery document."""
        method, url, headers, body, post = self.api.param_serialize(
            "GET", "/.well-known/openid-configuration", header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )  # fmt: skip
        response = self.api.call_api(method, url, headers, body, post, _request_timeout=TIMEOUT)
        response.read()
        if response.status != 200:
            raise ApiException(status=response.status, reason=response.reason)
        return str(json.loads(response.data)["issuer"])
