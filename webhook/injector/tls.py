"""The server's TLS: TLS 1.2 at least, and a certificate that may change on disk at any time.

A Secret volume update (or a rotation by the self-managed mode) swaps the files. Each new pair
is loaded into a fresh context, and only a pair that loads cleanly replaces the current one: a
handshake picks the current context in the SNI callback (OpenSSL calls it with or without SNI),
so open connections carry on and a half-written pair never breaks new ones.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def _context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


class ReloadingTLS:
    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        interval: float = 5.0,
        on_reload: Callable[[bytes], None] | None = None,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.interval = interval
        self.on_reload = on_reload
        self._seen = self._read()
        self._current = _context(cert_file, key_file)
        self.context = _context(cert_file, key_file)
        self.context.sni_callback = self._pick
        if on_reload and self._seen:
            on_reload(self._seen[0])

    def _pick(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext) -> None:
        del server_name
        connection.context = self._current

    def _read(self) -> tuple[bytes, bytes] | None:
        try:
            return self.cert_file.read_bytes(), self.key_file.read_bytes()
        except OSError:
            return None

    def check(self) -> bool:
        """Swap in the pair on disk if it changed and loads cleanly; else retry at the next check."""
        current = self._read()
        if current is None or current == self._seen:
            return False
        try:
            context = _context(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError) as error:
            log.warning("new certificate not loaded yet (%s); still serving the previous one", error)
            return False
        self._current = context
        self._seen = current
        log.info("serving certificate reloaded from %s", self.cert_file)
        if self.on_reload:
            self.on_reload(current[0])
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()
