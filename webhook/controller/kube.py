"""The controller's Kubernetes calls: finalizers, status, Events, one Secret, the issuer."""

from __future__ import annotations

import base64
import json
import logging
import socket
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
