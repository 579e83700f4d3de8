"""The project's own certificate authority and the TLS files of a node (issue 16).

* ``paths``: where a state directory keeps its TLS files (``PkiPaths``); pure, no cryptography
* ``files``: atomic writes with an explicit mode (keys are never readable by others, not for a moment)
* ``certs``: reading and describing certificates (subject, issuer, SANs, key usage, validity),
  ``check_pair`` and ``expiry_problems``
* ``ca``: the micro-CA (root + intermediate), issuing server and client certificates,
  revocation and the CRL; ``ensure_node_pki`` for ``neutrino up``
* ``bundle``: the tar a new node imports (its key, its certificate and the CA)

Built on ``cryptography`` and the standard library only (never an ``openssl`` subprocess);
imports no other layer of neutrino, so the server, the agents and the CLI all use it.
"""

__all__ = ["bundle", "ca", "certs", "files", "paths"]
