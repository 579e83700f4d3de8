"""Where a state directory keeps its TLS files (docs/tls.md, "The files").

Pure: no I/O beyond ``PkiPaths.missing``, no cryptography, so any side may import it cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The node's subdirectory of the state directory.
PKI_DIR = "pki"


@dataclass(frozen=True)
class PkiPaths:
    """The TLS files of one state directory (``STATE/pki/...``)."""

    root: Path  # STATE/pki

    @property
    def ca_dir(self) -> Path:
        """The CA's private directory (only on the node that runs ``neutrino pki init``)."""
        return self.root / "ca"

    @property
    def ca(self) -> Path:
        """The root certificate every client trusts (OS_CACERT, clouds.yaml ``cacert``)."""
        return self.root / "ca.pem"

    @property
    def crl(self) -> Path:
        """The certificate revocation list, signed by the intermediate CA."""
        return self.root / "crl.pem"

    @property
    def server_cert(self) -> Path:
        """The server's certificate followed by the intermediate's (the chain it presents)."""
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server.key"

    @property
    def node_cert(self) -> Path:
        """This node's client certificate followed by the intermediate's (what its agents present)."""
        return self.root / "node.pem"

    @property
    def node_key(self) -> Path:
        return self.root / "node.key"

    @property
    def bundles(self) -> Path:
        """Where ``neutrino pki issue --bundle`` writes by default."""
        return self.root / "bundles"

    def certificates(self) -> list[Path]:
        """Every certificate file of the layout (for ``pki show`` and expiry warnings)."""
        return [
            self.ca,
            self.ca_dir / "root.pem",
            self.ca_dir / "intermediate.pem",
            self.server_cert,
            self.node_cert,
        ]

    def missing(self) -> list[Path]:
        """The node's own files (CA certificate, CRL, server and client pairs) that do not exist."""
        wanted = [self.ca, self.crl, self.server_cert, self.server_key, self.node_cert, self.node_key]
        return [p for p in wanted if not p.exists()]


def pki_paths(state_dir: Path | str) -> PkiPaths:
    """The TLS files of ``state_dir``."""
    return PkiPaths(Path(state_dir) / PKI_DIR)
