"""Does a webhook's `caBundle` trust the certificate it serves, for the name the API server calls it by?"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from webhook.common.text import clip

SOON = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Verdict:
    """None of `problem`: trusted; `expires` then says until when."""

    problem: str | None
    expires: dt.datetime | None = None


def bundle_pem(ca_bundle: str | None) -> bytes | None:
    """The PEM a caBundle (base64 in the API) holds, or None when it is missing or not base64 PEM."""
    if not ca_bundle:
        return None
    try:
        pem = base64.b64decode(ca_bundle, validate=True)
    except (binascii.Error, ValueError):
        return None
    return pem if b"-----BEGIN CERTIFICATE-----" in pem else None


def served(url: str, ca_pem: bytes, timeout: float) -> Verdict:
    """A TLS handshake with `url`'s host as the API server makes it: the caBundle as the only trust, the URL's
    host as the name."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.create_default_context(cadata=ca_pem.decode(errors="replace"))
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as error:
        return Verdict(f"the caBundle does not trust the certificate {host}:{port} serves ({error.verify_message})")
    except (OSError, ssl.SSLError) as error:
        return Verdict(f"no TLS answer from {host}:{port} ({clip(str(error), 200)})")
    expires = x509.load_der_x509_certificate(der).not_valid_after_utc if der else None
    return Verdict(None, expires)


def issued(tls_crt: bytes, ca_pem: bytes, name: str, now: dt.datetime) -> Verdict:
    """Whether the serving certificate a Secret holds chains to the caBundle and names `name` (a DNS name or an
    IP address) at `now`."""
    try:
        chain = x509.load_pem_x509_certificates(tls_crt)
        roots = x509.load_pem_x509_certificates(ca_pem)
    except ValueError as error:
        return Verdict(f"cannot read the certificates ({clip(str(error), 120)})")
    leaf, intermediates = chain[0], chain[1:]
    try:
        subject: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = x509.DNSName(name)
    verifier = PolicyBuilder().store(Store(roots)).time(now).build_server_verifier(subject)  # type: ignore[arg-type]
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as error:
        if now > leaf.not_valid_after_utc:
            return Verdict(f"the serving certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        said = str(error)
        if "subjectAltName" in said:
            return Verdict(f"the serving certificate does not name {name}")
        if "candidates exhausted" in said:
            return Verdict("the serving certificate is not signed by a CA in the caBundle")
        return Verdict(f"the caBundle does not trust the serving certificate for {name} ({clip(said, 200)})")
    return Verdict(None, leaf.not_valid_after_utc)
