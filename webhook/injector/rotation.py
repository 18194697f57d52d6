"""Self-managed certificates: the webhook keeps its own CA, serving certificate and `caBundle`.

State lives in one Secret (`ca.crt`, `ca.key`, `tls.crt`, `tls.key`, and `ca-previous.crt` during
a CA overlap). Every replica runs the same loop: read the Secret, renew what is due, write it
back with its resourceVersion (optimistic concurrency: a replica that loses the race re-reads and
finds the winner's certificate), write the pair to local files for the TLS reloader, and make the
MutatingWebhookConfiguration's `caBundle` trust the current CA and, until it expires, the previous.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from webhook.injector.certs import KeyPair, make_ca, make_serving

log = logging.getLogger(__name__)

PREVIOUS_CA = "ca-previous.crt"


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """Validity, and renewal once two thirds have passed (cert-manager's default habit)."""

    ca: dt.timedelta = dt.timedelta(days=3650)
    serving: dt.timedelta = dt.timedelta(days=90)

    def due(self, cert_pem: bytes, lifetime: dt.timedelta, now: dt.datetime) -> bool:
        cert = x509.load_pem_x509_certificate(cert_pem)
        return now >= cert.not_valid_after_utc - lifetime / 3


class Conflict(Exception):
    """Someone else wrote the object since we read it."""


class CertificateStore:
    """The two API objects the rotation touches, and nothing else (RBAC limits it to them by name)."""

    def __init__(self, api: Any, namespace: str, secret: str, webhook_configuration: str) -> None:
        self.core = client.CoreV1Api(api)
        self.admission = client.AdmissionregistrationV1Api(api)
        self.namespace = namespace
        self.secret = secret
        self.webhook_configuration = webhook_configuration

    def read_secret(self) -> tuple[dict[str, bytes], str | None]:
        try:
            found = self.core.read_namespaced_secret(self.secret, self.namespace, _request_timeout=10)
        except ApiException as error:
            if error.status == 404:
                return {}, None
            raise
        data = {key: base64.b64decode(value) for key, value in (found.data or {}).items()}
        return data, found.metadata.resource_version

    def write_secret(self, data: dict[str, bytes], resource_version: str | None) -> None:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": self.secret, "namespace": self.namespace},
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
        }
        try:
            if resource_version is None:
                self.core.create_namespaced_secret(self.namespace, body, _request_timeout=10)
            else:
                body["metadata"]["resourceVersion"] = resource_version
                self.core.replace_namespaced_secret(self.secret, self.namespace, body, _request_timeout=10)
        except ApiException as error:
            if error.status == 409:
                raise Conflict from error
            raise

    def ensure_ca_bundle(self, bundle: bytes) -> bool:
        """Set `caBundle` on every webhook of the configuration; True if anything changed."""
        encoded = base64.b64encode(bundle).decode()
        for _ in range(5):
            current = self.admission.api_client.sanitize_for_serialization(
                self.admission.read_mutating_webhook_configuration(self.webhook_configuration, _request_timeout=10)
            )
            hooks = current.get("webhooks") or []
            if all(hook.get("clientConfig", {}).get("caBundle") == encoded for hook in hooks):
                return False
            for hook in hooks:
                hook.setdefault("clientConfig", {})["caBundle"] = encoded
            try:
                self.admission.replace_mutating_webhook_configuration(
                    self.webhook_configuration, current, _request_timeout=10
                )
                return True
            except ApiException as error:
                if error.status != 409:
                    raise
        raise Conflict(f"MutatingWebhookConfiguration {self.webhook_configuration} kept changing under us")


class CertificateRotator:
    def __init__(
        self,
        store: CertificateStore,
        dns_names: Sequence[str],
        ips: Sequence[str],
        cert_file: Path,
        key_file: Path,
        lifetimes: Lifetimes | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.store = store
        self.dns_names = list(dns_names)
        self.ips = list(ips)
        self.cert_file = cert_file
        self.key_file = key_file
        self.lifetimes = lifetimes or Lifetimes()
        self.clock = clock
        self.rotations = 0

    def sync(self) -> None:
        """Renew what is due (racing replicas converge), then local files and `caBundle` follow the Secret."""
        for _ in range(5):
            data, version = self.store.read_secret()
            renewed = self._renewed(data, self.clock())
            if renewed is None:
                break
            try:
                self.store.write_secret(renewed, version)
            except Conflict:
                log.info("another replica updated the certificate Secret first; reading theirs")
                continue
            self.rotations += 1
            log.info("rotated the serving certificate in Secret %s", self.store.secret)
            data = renewed
            break
        else:
            raise Conflict("the certificate Secret kept changing; will retry")
        self._write_files(data)
        bundle = data["ca.crt"] + data.get(PREVIOUS_CA, b"")
        if self.store.ensure_ca_bundle(bundle):
            log.info("caBundle of %s updated", self.store.webhook_configuration)

    def _renewed(self, data: dict[str, bytes], now: dt.datetime) -> dict[str, bytes] | None:
        """The new Secret data if anything is due, else None."""
        result = dict(data)
        has_ca = "ca.crt" in data and "ca.key" in data
        if not has_ca or self.lifetimes.due(data["ca.crt"], self.lifetimes.ca, now):
            ca = make_ca(valid_for=self.lifetimes.ca, now=now)
            if "ca.crt" in data and not _expired(data["ca.crt"], now):
                result[PREVIOUS_CA] = data["ca.crt"]  # still trusted until it expires: old certs keep working
            result["ca.crt"], result["ca.key"] = ca.cert_pem, ca.key_pem
        elif PREVIOUS_CA in data and _expired(data[PREVIOUS_CA], now):
            del result[PREVIOUS_CA]
        ca = KeyPair(result["ca.crt"], result["ca.key"])
        if (
            result["ca.crt"] != data.get("ca.crt")
            or "tls.crt" not in data
            or "tls.key" not in data
            or self.lifetimes.due(data["tls.crt"], self.lifetimes.serving, now)
            or not self._matches(KeyPair(data["tls.crt"], data["tls.key"]), ca)
        ):
            serving = make_serving(ca, self.dns_names, self.ips, valid_for=self.lifetimes.serving, now=now)
            result["tls.crt"], result["tls.key"] = serving.cert_pem, serving.key_pem
        return None if result == data else result

    def _matches(self, serving: KeyPair, ca: KeyPair) -> bool:
        """Issued by the current CA, for exactly the names we serve, with its own key beside it."""
        try:
            cert = serving.cert
            cert.verify_directly_issued_by(ca.cert)
            if cert.public_key() != serving.key.public_key():
                return False
        except (ValueError, TypeError, InvalidSignature):
            return False
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
        return sans.get_values_for_type(x509.DNSName) == self.dns_names and ips == self.ips

    def _write_files(self, data: dict[str, bytes]) -> None:
        for path, key in ((self.key_file, "tls.key"), (self.cert_file, "tls.crt")):
            if path.exists() and path.read_bytes() == data[key]:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.tmp")
            temporary.write_bytes(data[key])
            temporary.chmod(0o600 if key == "tls.key" else 0o644)
            temporary.replace(path)

    def run(self, stop: threading.Event, interval: float = 300.0) -> None:
        """Keep syncing; a failure is retried sooner, with jitter so replicas do not move in step."""
        while not stop.wait(interval * random.uniform(0.8, 1.2)):
            try:
                self.sync()
            except Exception as error:
                log.warning("certificate sync failed, retrying: %s", error)
                stop.wait(10 * random.uniform(0.5, 1.5))


def _expired(cert_pem: bytes, now: dt.datetime) -> bool:
    return now >= x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
