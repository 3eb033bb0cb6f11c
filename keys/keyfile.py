"""Identity key files: encrypted Ed25519 private keys and small public key files.

A private key file is an encrypted PKCS#8 PEM block (``BEGIN ENCRYPTED PRIVATE KEY``)
that only its owner may read (mode 0600). It is created with that mode from the start
and written through a temporary file in the same directory that is flushed to disk and
then moved into place, so a reader sees either the old file or the complete new one.

Unencrypted key files are refused: keys are encrypted at rest. A file that group or
others can access at all is refused, with the ``chmod`` that fixes it.

A public key file is one line of JSON::

    {"algorithm":"ed25519","key":"<64 hex>","key_id":"<64 hex>"}

where ``key_id`` must be the id ``ledger.crypto`` computes for ``key``.

Every failure is a ``KeyFileError`` carrying the path; the passphrase never appears in
any message.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import re
import secrets
import shlex
import stat
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    load_pem_private_key,
)

from kpledger.ledger.canonical import canonical_bytes
from kpledger.ledger.crypto import Ed25519Signer, PublicKey
from kpledger.ledger.errors import InvalidData, KeyFileError

__all__ = [
    "generate_key_file",
    "load_key",
    "load_public_key",
    "passphrase_from_env",
    "read_passphrase",
    "save_key",
    "write_private",
    "write_public_key",
]

#: Mode of a private key file, and the bits that must never be set on one.
PRIVATE_MODE = 0o600
_NOT_OWNER_BITS = 0o077
#: Mode of a public key file.
PUBLIC_MODE = 0o644
#: Anything larger than this is not one of our key files; do not read it whole.
_MAX_FILE_SIZE = 64 * 1024

_ALGORITHM = "ed25519"
_PUBLIC_FIELDS = frozenset({"algorithm", "key", "key_id"})
_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_ENCRYPTED_LABEL = b"ENCRYPTED PRIVATE KEY"
_PLAIN_LABEL = b"PRIVATE KEY"

# Errors with which os.link says "this file system has no hard links".
_NO_HARD_LINKS = frozenset(
    code
    for code in (
        errno.EPERM,
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
        errno.ENOSYS,
    )
    if code is not None
)


# --------------------------------------------------------------------------------------
# Writing files atomically


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable, where the platform allows it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        # Some file systems cannot sync a directory; the rename has happened anyway.
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _link_new(tmp: Path, path: Path) -> None:
    """Give the finished ``tmp`` the name ``path``, which must not exist yet.

    A hard link fails if ``path`` exists, even when another process creates it at the
    same moment; the caller then removes the temporary name. File systems without hard
    links fall back to check-then-rename.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from exc
        os.replace(tmp, path)


def _write_atomically(path: Path, data: bytes, *, mode: int, overwrite: bool, what: str) -> None:
    """Write ``data`` to ``path`` with exactly ``mode``, all or nothing.

    The temporary file is created with ``mode`` by ``os.open`` (never a moment with wider
    permissions), set to exactly ``mode`` whatever the umask, written, fsync'ed and moved
    into place. On any failure the temporary file is removed and ``path`` is untouched.
    """
    where = str(path)
    exists_message = f"{what} already exists; refusing to overwrite it"
    if not overwrite and os.path.lexists(path):
        raise KeyFileError(exists_message, path=where)
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    created = False
    try:
        fd = os.open(tmp, flags, mode)
        created = True
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)  # the umask may have removed bits
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
            created = False  # the temporary name is gone
        else:
            _link_new(tmp, path)  # the temporary name stays and is removed below
    except FileExistsError as exc:
        raise KeyFileError(exists_message, path=where) from exc
    except OSError as exc:
        raise KeyFileError(f"cannot write {what}: {exc.strerror or exc}", path=where) from exc
    finally:
        if created:
            # Best effort: a failure here must not hide the error being raised.
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_directory(directory)


# --------------------------------------------------------------------------------------
# Reading files


def _read_limited(path: Path, *, what: str, private: bool) -> bytes:
    """Read a small regular file; for a private key, refuse one others may access."""
    where = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise KeyFileError(f"{what} not found", path=where) from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read {what}: {exc.strerror or exc}", path=where) from exc
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"{what} is not a regular file", path=where)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise KeyFileError(f"cannot read {what}: {exc.strerror or exc}", path=where) from exc
    with os.fdopen(fd, "rb") as handle:
        # Check the file that was opened, not whatever the name pointed to a moment ago.
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{what} is not a regular file", path=where)
        if private and os.name == "posix" and st.st_mode & _NOT_OWNER_BITS:
            shown = f"{stat.S_IMODE(st.st_mode):04o}"
            raise KeyFileError(
                f"permissions {shown} are too open; run chmod 600 {shlex.quote(where)}",
                path=where,
            )
        if st.st_size > _MAX_FILE_SIZE:
            raise KeyFileError(
                f"{what} is {st.st_size} bytes, too large to be a key file", path=where
            )
        try:
            data = handle.read(_MAX_FILE_SIZE + 1)
        except OSError as exc:
            raise KeyFileError(f"cannot read {what}: {exc.strerror or exc}", path=where) from exc
    if len(data) > _MAX_FILE_SIZE:
        raise KeyFileError(f"{what} is too large to be a key file", path=where)
    return data


def _check_pem_label(data: bytes, where: str) -> None:
    """Refuse, with a message saying why, anything but an encrypted PKCS#8 PEM block."""
    match = _PEM_LABEL.search(data)
    if match is None:
        raise KeyFileError("not a PEM key file (no '-----BEGIN' line)", path=where)
    label = match.group(1)
    if label == _ENCRYPTED_LABEL:
        return
    if label == _PLAIN_LABEL:
        raise KeyFileError(
            "key file is not encrypted; keys must be encrypted at rest "
            "(save it again with a passphrase)",
            path=where,
        )
    raise KeyFileError(
        "expected an encrypted PKCS#8 key ('BEGIN ENCRYPTED PRIVATE KEY'), "
        f"found 'BEGIN {label.decode('ascii')}'",
        path=where,
    )


# --------------------------------------------------------------------------------------
# Private keys


def save_key(
    path: Path, signer: Ed25519Signer, passphrase: bytes, *, overwrite: bool = False
) -> None:
    """Write ``signer``'s private key to ``path``, encrypted under ``passphrase``.

    The file is encrypted PKCS#8 PEM with mode 0600. An existing file is kept (and
    ``KeyFileError`` raised) unless ``overwrite`` is true; on any failure nothing is
    left behind and an existing file is untouched.
    """
    where = str(path)
    if not passphrase:
        raise KeyFileError("an empty passphrase is not allowed for a key file", path=where)
    try:
        pem = signer.private_key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(passphrase)
        )
    except ValueError as exc:  # e.g. a passphrase longer than the backend accepts
        raise KeyFileError(f"cannot encrypt the key: {exc}", path=where) from exc
    _write_atomically(path, pem, mode=PRIVATE_MODE, overwrite=overwrite, what="key file")


def write_private(path: Path, data: bytes | str, *, what: str = "private file") -> None:
    """Write a new owner-only file (mode 0600), all or nothing; refuse one that exists.

    For every secret a node's folder holds besides its key: TLS private keys,
    ``secrets.toml``, Docker secret files. ``what`` names the file in errors.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    _write_atomically(path, raw, mode=PRIVATE_MODE, overwrite=False, what=what)


def load_key(path: Path, passphrase: bytes) -> Ed25519Signer:
    """Read and decrypt the Ed25519 private key at ``path``.

    Refuses a missing file, one whose mode gives group or others any access, one that
    is not an encrypted PKCS#8 PEM key, a wrong passphrase and a key of another type.
    """
    where = str(path)
    data = _read_limited(path, what="key file", private=True)
    _check_pem_label(data, where)
    if not passphrase:
        raise KeyFileError("an empty passphrase cannot unlock a key file", path=where)
    try:
        key = load_pem_private_key(data, password=passphrase)
    except TypeError as exc:  # the passphrase is not empty, so: the key is not encrypted
        raise KeyFileError(
            "key file is not encrypted; keys must be encrypted at rest", path=where
        ) from exc
    except ValueError as exc:
        raise KeyFileError("wrong passphrase or corrupted key file", path=where) from exc
    except UnsupportedAlgorithm as exc:
        raise KeyFileError("key file holds a key of an unsupported type", path=where) from exc
    if not isinstance(key, Ed25519PrivateKey):
        found = type(key).__name__.removesuffix("PrivateKey") or type(key).__name__
        raise KeyFileError(f"not an Ed25519 key (key type: {found})", path=where)
    return Ed25519Signer(key)


def generate_key_file(path: Path, passphrase: bytes, *, overwrite: bool = False) -> Ed25519Signer:
    """Generate a new Ed25519 key, save it to ``path`` and return it."""
    signer = Ed25519Signer.generate()
    save_key(path, signer, passphrase, overwrite=overwrite)
    return signer


# --------------------------------------------------------------------------------------
# Passphrases


def passphrase_from_env(var: str) -> bytes:
    """The passphrase held in environment variable ``var``; it must be set and non-empty."""
    value = os.environ.get(var)
    if value is None:
        raise KeyFileError(f"environment variable {var} is not set; it must hold the passphrase")
    if not value:
        raise KeyFileError(f"environment variable {var} is empty; it must hold the passphrase")
    # surrogateescape gives back the exact bytes the environment held.
    return value.encode("utf-8", "surrogateescape")


def _stdin_is_tty() -> bool:
    stream = sys.stdin
    return stream is not None and stream.isatty()


def read_passphrase(var: str | None, *, prompt: str, confirm: bool = False) -> bytes:
    """A passphrase from environment variable ``var`` if set and non-empty, else typed.

    Typing (without echo) is only offered when stdin is a terminal; otherwise
    ``KeyFileError`` says which variable to set. With ``confirm`` the passphrase is
    asked twice and must match (for a new key).
    """
    if var is not None and os.environ.get(var):
        return passphrase_from_env(var)
    if not _stdin_is_tty():
        if var is None:
            raise KeyFileError("no passphrase: stdin is not a terminal to type it on")
        raise KeyFileError(
            f"no passphrase: set the environment variable {var} "
            "(stdin is not a terminal to type it on)"
        )
    try:
        first = getpass.getpass(prompt)
        if not first:
            raise KeyFileError("an empty passphrase is not allowed")
        if confirm:
            second = getpass.getpass("Repeat the passphrase: ")
            if second != first:
                raise KeyFileError("the two passphrases do not match")
    except EOFError as exc:
        raise KeyFileError("no passphrase was entered") from exc
    return first.encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------------------
# Public keys


def write_public_key(path: Path, public: PublicKey, *, overwrite: bool = False) -> None:
    """Write ``public`` as a one-line JSON file (mode 0644), atomically.

    An existing file is kept (and ``KeyFileError`` raised) unless ``overwrite`` is true.
    """
    document = {"algorithm": _ALGORITHM, "key": public.hex(), "key_id": public.key_id}
    data = canonical_bytes(document) + b"\n"
    _write_atomically(path, data, mode=PUBLIC_MODE, overwrite=overwrite, what="public key file")


class _DuplicateField(Exception):
    """Internal: a JSON object names one field twice (never leaves this module)."""


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _DuplicateField(repr(name))
        out[name] = value
    return out


def load_public_key(path: Path) -> PublicKey:
    """Read a public key file, checking that its ``key_id`` belongs to its ``key``."""
    where = str(path)
    data = _read_limited(path, what="public key file", private=False)
    try:
        document: Any = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_fields)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise KeyFileError("public key file is not valid JSON", path=where) from exc
    except _DuplicateField as exc:
        raise KeyFileError(f"public key file repeats the field {exc}", path=where) from exc
    if not isinstance(document, dict):
        raise KeyFileError("public key file must hold a JSON object", path=where)
    missing = sorted(_PUBLIC_FIELDS - document.keys())
    if missing:
        raise KeyFileError(f"public key file lacks {', '.join(missing)}", path=where)
    extra = sorted(str(name) for name in document.keys() - _PUBLIC_FIELDS)
    if extra:
        raise KeyFileError(f"public key file has unknown fields {', '.join(extra)}", path=where)
    if document["algorithm"] != _ALGORITHM:
        raise KeyFileError(
            f"public key algorithm must be {_ALGORITHM!r}, got {document['algorithm']!r}",
            path=where,
        )
    try:
        public = PublicKey.from_hex(document["key"], field="key")
    except InvalidData as exc:
        raise KeyFileError(f"bad public key: {exc}", path=where) from exc
    stated = document["key_id"]
    if stated != public.key_id:
        raise KeyFileError(
            f"key_id {stated!r} does not match the key, whose key id is {public.key_id}",
            path=where,
        )
    return public
