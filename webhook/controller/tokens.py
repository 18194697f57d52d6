"""Graph access tokens for a blueprint or the directory app, by MSAL's client credentials flow.

A client-secret blueprint authenticates with its secret; a workload-identity blueprint, and the
optional directory app, with the controller's projected service-account token as client assertion,
re-read from the file for every token request (the kubelet rotates it). MSAL caches tokens per app
until they near expiry; there is one app per credential, replaced (with its tokens) when the
blueprint's secret changes, so a rotated secret is used at once and the old one is not kept.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msal
import requests

from webhook.common.models import DEFAULT_INSTANCE

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
_AADSTS = re.compile(r"AADSTS\d+")


class _Session(requests.Session):  # type: ignore[misc]
    """MSAL's HTTP session, with our CA on every request: a per-request `verify` is the only one that
    REQUESTS_CA_BUNDLE in the environment cannot silently replace."""

    def __init__(self, verify: str | bool, timeout: float) -> None:
        super().__init__()
        self._verify = verify
        self._timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["verify"] = self._verify
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class TokenError(Exception):
    """The token endpoint refused: `code` is the AADSTS code (or the OAuth error), `message` its text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AppLogin:
    tenant_id: str
    client_id: str
    instance: str | None
    secret: str | None  # None: workload identity (the token file)


class Tokens:
    def __init__(
        self,
        token_file: Path,
        authority_host: str | None,
        verify: str | bool,
        timeout: float,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self.token_file = token_file
        self.authority_host = authority_host
        self.session = _Session(verify, timeout)
        self.observe = observe  # "issued", "cached", "refused" or "unreachable", per token asked for
        # (authority, client id) -> (credential fingerprint, app)
        self._apps: dict[tuple[str, str], tuple[str, msal.ConfidentialClientApplication]] = {}
        self._lock = threading.Lock()

    def provider(self, login: AppLogin) -> Callable[[], str]:
        """A token source for Graph calls as this app (each call may hit MSAL's cache)."""
        return lambda: self.token(login)

    def token(self, login: AppLogin) -> str:
        try:  # the app's creation reads the authority's discovery document: it can fail too
            result: dict[str, Any] = self._app(login).acquire_token_for_client(scopes=[GRAPH_SCOPE])
        except (OSError, ValueError) as error:  # unreachable authority, unreadable token file, bad discovery
            self._observe("unreachable")
            raise TokenError("TokenEndpointUnreachable", f"{type(error).__name__}: {str(error)[:200]}") from None
        if "access_token" in result:
            self._observe("cached" if result.get("token_source") == "cache" else "issued")
            return str(result["access_token"])
        self._observe("refused")
        description = str(result.get("error_description") or "")
        found = _AADSTS.search(description)
        code = found.group(0) if found else str(result.get("error") or "unknown_error")
        first_line = description.split(" Trace ID:", maxsplit=1)[0].split("\r\n", maxsplit=1)[0]
        raise TokenError(code, first_line[:300] or str(result.get("error")))

    def authority(self, login: AppLogin) -> str:
        host = self.authority_host or login.instance or DEFAULT_INSTANCE
        return host.rstrip("/") + "/" + login.tenant_id

    def apps(self) -> int:
        """How many apps (each with its credential and tokens) are held."""
        with self._lock:
            return len(self._apps)

    def _observe(self, result: str) -> None:
        if self.observe is not None:
            self.observe(result)

    def _app(self, login: AppLogin) -> msal.ConfidentialClientApplication:
        authority = self.authority(login)
        fingerprint = hashlib.sha256(login.secret.encode()).hexdigest() if login.secret else "assertion"
        key = (authority, login.client_id)
        with self._lock:
            held = self._apps.get(key)
            if held is not None and held[0] == fingerprint:
                return held[1]
            credential: Any = login.secret if login.secret else {"client_assertion": self._assertion}
            app = msal.ConfidentialClientApplication(
                login.client_id,
                client_credential=credential,
                authority=authority,
                instance_discovery=False,  # nothing but the configured authority is ever called
                http_client=self.session,
            )
            self._apps[key] = (fingerprint, app)  # a rotated secret replaces the old one, and its tokens
            return app

    def _assertion(self) -> str:
        return self.token_file.read_text(encoding="utf-8").strip()
