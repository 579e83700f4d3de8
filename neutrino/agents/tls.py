"""The agents' client TLS: connect with this node's certificate (mutual TLS) instead of a password.

``AgentTls(ca, cert, key)`` holds one ``ssl.SSLContext`` that trusts the
cloud's CA and presents the node's client certificate (``STATE/pki/node.pem``
and ``node.key``).  Every client of an agent uses it: the feed client
(httpx ``verify=``) and the metadata agent's upstream (asyncio ``ssl=``).

* Before the first connection the certificate is checked: a missing or
  unreadable file, a key that does not match, or a certificate that has
  expired or is not valid yet raises ``AgentCertificateError`` naming the
  file, the subject and the dates (the agent stops with that message).
* Rotation: ``maybe_reload()`` (called before requests; it looks at the
  files at most every ``check_interval`` seconds) loads a changed certificate
  and key into the same context, so new connections present the new
  certificate while open ones finish with the old.  The new pair is read
  once, checked (pair, dates) from that copy and loaded from it, so a
  half-written rotation is never loaded; a bad pair keeps the old one and is
  logged.

``agent_tls(cfg, url)`` builds it from the configuration for an ``https://``
server URL, else None: then (``--no-tls``) the agents log in with the
service user's password (``neutrino.agents.auth``).
"""

from __future__ import annotations

import logging
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from neutrino.config import Config
from neutrino.pki import certs
from neutrino.pki.paths import pki_paths
from neutrino.pki.tls import TLSFileError, client_context

LOG = logging.getLogger(__name__)


class AgentCertificateError(Exception):
    """The node's client certificate cannot be used (the message names the file and why)."""


def check_certificate(cert_file: Path | str, key_file: Path | str) -> None:
    """Raise ``AgentCertificateError`` unless the pair exists, matches and is valid now."""
    try:
        certs.check_pair(cert_file, key_file)
    except certs.PkiError as exc:
        raise AgentCertificateError(f"the agent's client certificate cannot be used: {exc}") from None
    # warn_days=0: only a certificate outside its validity (expired, or not valid yet) is a problem here.
    problems = certs.expiry_problems([cert_file], 0)
    if problems:
        raise AgentCertificateError(
            "the agent's client certificate cannot be used: "
            + "; ".join(problems)
            + " (issue a new one on the controller: `neutrino pki rotate`, or "
            "`neutrino pki issue --host HOST --role ROLE --bundle FILE` and `neutrino pki import FILE` here)"
        )


class AgentTls:
    """The agents' client context (see the module docstring)."""

    def __init__(
        self,
        ca_file: Path | str,
        cert_file: Path | str,
        key_file: Path | str,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ca_file, self.cert_file, self.key_file = Path(ca_file), Path(cert_file), Path(key_file)
        self.check_interval = check_interval
        self._clock = clock
        check_certificate(self.cert_file, self.key_file)
        self._stamp = self._stat()
        try:
            self.context: ssl.SSLContext = client_context(self.ca_file, self.cert_file, self.key_file)
        except TLSFileError as exc:
            raise AgentCertificateError(f"the agents' TLS files cannot be used: {exc}") from None
        self._checked_at = clock()
        self.reloads = 0  # certificates loaded after the first (observability, tests)

    def _stat(self) -> tuple[tuple[int, int] | None, ...]:
        out: list[tuple[int, int] | None] = []
        for path in (self.cert_file, self.key_file):
            try:
                st = os.stat(path)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def maybe_reload(self) -> bool:
        """Load the certificate and key again if their files changed; True when the new pair is in use."""
        now = self._clock()
        if now - self._checked_at < self.check_interval:
            return False
        self._checked_at = now
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self._load_copy(self.cert_file.read_bytes(), self.key_file.read_bytes())
        except (OSError, AgentCertificateError, ssl.SSLError) as exc:
            LOG.error("client certificate %s not reloaded, still using the previous one: %s", self.cert_file, exc)
            return False
        self.reloads += 1
        LOG.info("client certificate reloaded from %s", self.cert_file)
        return True

    def _load_copy(self, cert: bytes, key: bytes) -> None:
        """Check the pair from one private copy of the files and load that copy into the context."""
        with tempfile.TemporaryDirectory(prefix="neutrino-tls-") as tmp:  # mode 0700: the key stays private
            cert_copy, key_copy = Path(tmp) / "node.pem", Path(tmp) / "node.key"
            cert_copy.write_bytes(cert)
            key_copy.touch(mode=0o600)
            key_copy.write_bytes(key)
            try:
                check_certificate(cert_copy, key_copy)
            except AgentCertificateError as exc:
                raise AgentCertificateError(str(exc).replace(str(cert_copy), str(self.cert_file))) from None
            # The pair matches (checked above), so this replaces both at once and cannot leave the
            # context with a certificate whose key is missing.
            self.context.load_cert_chain(cert_copy, key_copy)


def tls_files(cfg: Config) -> tuple[Path, Path, Path]:
    """(CA, client certificate, client key) of the agents: ``[DEFAULT] ssl_ca_file``,
    ``[pki] client_cert_file`` and ``client_key_file``, each defaulting to ``STATE/pki/``."""
    paths = pki_paths(cfg.state_dir)
    return (
        Path(cfg.default.ssl_ca_file or paths.ca),
        Path(cfg.pki.client_cert_file or paths.node_cert),
        Path(cfg.pki.client_key_file or paths.node_key),
    )


def agent_tls(cfg: Config, url: str) -> AgentTls | None:
    """The agents' client TLS for a server at ``url``: an ``https://`` URL gets one (raising
    ``AgentCertificateError`` when the node's certificate cannot be used); ``http://`` gets
    None (``--no-tls``: the agents log in with the service user's password)."""
    if not url.startswith("https://"):
        return None
    return AgentTls(*tls_files(cfg))


def scheme(cfg: Config) -> str:
    """``https`` when the cloud's APIs serve TLS (``[DEFAULT] use_ssl``), else ``http``."""
    return "https" if cfg.default.use_ssl else "http"


__all__ = ["AgentCertificateError", "AgentTls", "agent_tls", "check_certificate", "scheme", "tls_files"]
