"""The bundle a new node imports: a tar file (mode 0600) with its key, its certificate and the CA.

A client bundle holds ``node.pem`` (the node's client certificate and the intermediate),
``node.key`` and ``ca.pem`` (the root); a server bundle ``server.pem``, ``server.key`` and
``ca.pem``; either may carry ``crl.pem``, the CA's revocation list.  ``read_bundle`` accepts
nothing else: regular files with exactly these names, each small, each pair complete;
``install_bundle`` also checks that every certificate leads to the bundle's root by its
signatures, is valid now and matches its key (and the CRL is its CA's) before it writes anything.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from neutrino.pki import files
from neutrino.pki.certs import MAX_FILE_BYTES, PkiError, check_pair, load_chain, name_text, verify_chain
from neutrino.pki.paths import PkiPaths, pki_paths

#: member name -> (pair it belongs to, role in the pair)
PAIRS = {"node": ("node.pem", "node.key"), "server": ("server.pem", "server.key")}
#: ``crl.pem`` (optional): the CA's revocation list when the bundle was made, so that a joined
#: node has every file of its layout (``PkiPaths.missing``) before it first starts.
MEMBERS = frozenset({"ca.pem", "crl.pem", *(n for pair in PAIRS.values() for n in pair)})


def make_bundle(path: Path, members: dict[str, bytes]) -> None:
    """Write the tar ``path`` (mode 0600, atomically) holding ``members`` (names in ``MEMBERS``)."""
    unknown = sorted(set(members) - MEMBERS)
    if unknown:
        raise ValueError(f"not bundle members: {', '.join(unknown)}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mode = files.PRIVATE
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(members[name]))
    files.write_atomic(Path(path), buf.getvalue(), files.PRIVATE)


def read_bundle(path: Path) -> dict[str, bytes]:
    """The members of the bundle ``path``; PkiError for anything that is not a bundle."""
    path = Path(path)
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:
                if info.name not in MEMBERS or not info.isreg():
                    raise PkiError(
                        f"{path}: unexpected member {info.name!r} (a bundle holds only regular files named "
                        f"{', '.join(sorted(MEMBERS))})"
                    )
                if info.name in out:
                    raise PkiError(f"{path}: {info.name} appears twice")
                if info.size > MAX_FILE_BYTES:
                    raise PkiError(f"{path}: {info.name} is larger than {MAX_FILE_BYTES} bytes")
                fh = tar.extractfile(info)
                if fh is None:
                    raise PkiError(f"{path}: {info.name} cannot be read")
                out[info.name] = fh.read()
    except FileNotFoundError:
        raise PkiError(f"bundle {path} does not exist (make it with `neutrino pki issue --bundle`)") from None
    except (tarfile.TarError, OSError) as exc:
        raise PkiError(f"{path} is not a readable bundle (tar file): {exc}") from None
    if "ca.pem" not in out:
        raise PkiError(f"{path}: the bundle has no ca.pem")
    pairs = [kind for kind, (cert, key) in PAIRS.items() if cert in out or key in out]
    if not pairs:
        raise PkiError(f"{path}: the bundle holds no certificate (node.pem/node.key or server.pem/server.key)")
    for kind in pairs:
        cert, key = PAIRS[kind]
        if cert not in out or key not in out:
            raise PkiError(
                f"{path}: the bundle has {cert if cert in out else key} without {key if cert in out else cert}"
            )
    return out


def install_bundle(state_dir: Path, path: Path) -> list[Path]:
    """Check the bundle ``path`` and install its files into ``state_dir``'s ``pki/`` (0600).

    Refuses (PkiError, nothing written) a bundle whose certificates do not chain to its
    ``ca.pem``, are not valid now, or do not match their keys; and on a node with its own
    CA, a bundle of another CA.  Returns the files written."""
    members = read_bundle(path)
    paths = pki_paths(state_dir)
    _check(members, paths, Path(path))
    files.ensure_dir(paths.root)
    written: list[Path] = []
    for cert, key in PAIRS.values():
        if cert in members:
            files.replace_together(
                [(paths.root / key, members[key], files.PRIVATE), (paths.root / cert, members[cert], files.PRIVATE)]
            )
            written += [paths.root / cert, paths.root / key]
    files.write_atomic(paths.ca, members["ca.pem"], files.PRIVATE)
    written.append(paths.ca)
    if "crl.pem" in members:
        files.write_atomic(paths.crl, members["crl.pem"], files.PRIVATE)
        written.append(paths.crl)
    return written


def _check(members: dict[str, bytes], paths: PkiPaths, path: Path) -> None:
    """Everything ``install_bundle`` promises to check, on the members in memory (a scratch
    directory inside ``paths.root`` holds them for ``check_pair``, then is removed)."""
    try:
        roots = x509.load_pem_x509_certificates(members["ca.pem"])
    except ValueError as exc:
        raise PkiError(f"{path}: ca.pem holds no PEM certificate ({exc})") from None
    root = roots[0]
    if root.subject != root.issuer:
        raise PkiError(f"{path}: ca.pem ({name_text(root.subject)}) is not a root (self-signed) certificate")
    crl = None
    if "crl.pem" in members:
        try:
            crl = x509.load_pem_x509_crl(members["crl.pem"])
        except ValueError as exc:
            raise PkiError(f"{path}: crl.pem holds no PEM CRL ({exc})") from None
    own_root = paths.ca_dir / "root.pem"
    if own_root.exists() and load_chain(own_root)[0] != root:
        raise PkiError(
            f"{path} is from another CA than this node's own ({paths.ca_dir}): a node with a CA issues its "
            "own certificates (`neutrino pki issue`, `neutrino pki rotate`)"
        )
    files.ensure_dir(paths.root)
    with tempfile.TemporaryDirectory(prefix=".import-", dir=paths.root) as scratch:
        for kind, (cert, key) in PAIRS.items():
            if cert not in members:
                continue
            cert_file, key_file = Path(scratch) / cert, Path(scratch) / key
            files.write_atomic(cert_file, members[cert])
            files.write_atomic(key_file, members[key])
            try:
                chain = check_pair(cert_file, key_file)
            except PkiError as exc:
                raise PkiError(f"{path}: {kind} certificate: {exc}".replace(scratch + "/", "")) from None
            verify_chain(chain, root, f"{path}: {cert}")
            if crl is not None and not _signed_by_issuer(crl, chain):
                raise PkiError(f"{path}: crl.pem is not signed by the CA that issued {cert}")


def _signed_by_issuer(crl: x509.CertificateRevocationList, chain: list[x509.Certificate]) -> bool:
    """Whether ``crl`` is signed by the issuer of ``chain``'s leaf (our CA signs with EC keys)."""
    if len(chain) < 2 or crl.issuer != chain[1].subject:
        return False
    key = chain[1].public_key()
    return isinstance(key, ec.EllipticCurvePublicKey) and crl.is_signature_valid(key)
