"""The keys a node may sign with, picked up from disk while it runs.

A chain's key changes on the ledger (``key.rotate`` on the chain itself, or a
governance ``key.replace``); the node then needs the matching private key
from its very next block on, without a restart. ``KeyRing`` holds every key
the node has loaded and, when the ledger asks for one it lacks, reads the key
files again:

* ``node.key`` (``node.key_file``): the current key;
* ``node.key.next``: a key that ``kpl keys rotate`` made and is putting on the
  ledger (or a replacement key installed by the operator);
* ``node.key.retired-<key id>``: keys rotated away, kept because the KP
  sealer also signs the governance chain with its registry key until a
  ``key.replace`` of ``KP`` moves it;
* ``node.key.kp``: a key for chain ``KP`` alone, installed by the KP sealer's
  operator after a ``key.replace`` of ``KP``.

Every file is encrypted under the node's passphrase (``keys.keyfile``); the
passphrase stays in this object's memory only. A file that cannot be read
(half written, wrong passphrase) is skipped and named in the log, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from kpledger.keys import load_key
from kpledger.ledger.crypto import Signer
from kpledger.ledger.errors import KeyFileError

__all__ = ["KeyRing", "key_files", "next_key_file", "retired_key_file"]

log = logging.getLogger("kpl.keys")


def next_key_file(key_file: Path) -> Path:
    return key_file.with_name(key_file.name + ".next")


def retired_key_file(key_file: Path, key_id: str) -> Path:
    return key_file.with_name(f"{key_file.name}.retired-{key_id[:16]}")


def key_files(key_file: Path) -> list[Path]:
    """The files a node's keys may be in: current, next, retired ones."""
    found = [key_file, next_key_file(key_file), key_file.with_name(key_file.name + ".kp")]
    found += sorted(key_file.parent.glob(key_file.name + ".retired-*"))
    return [p for p in found if p.is_file()]


class KeyRing:
    def __init__(
        self,
        signers: Iterable[Signer] = (),
        *,
        key_file: Path | None = None,
        passphrase: bytes | None = None,
    ) -> None:
        self._signers: dict[str, Signer] = {s.public.key_id: s for s in signers}
        self._key_file = key_file
        self._passphrase = passphrase
        self._seen: tuple[tuple[str, int, int], ...] | None = None

    def __len__(self) -> int:
        return len(self._signers)

    def add(self, signer: Signer) -> None:
        self._signers.setdefault(signer.public.key_id, signer)

    def get(self, key_id: str) -> Signer | None:
        return self._signers.get(key_id)

    def find(self, key_id: str) -> Signer | None:
        """The signer for ``key_id``, reading the key files again if it is not loaded."""
        found = self._signers.get(key_id)
        if found is None and self.reload():
            found = self._signers.get(key_id)
        return found

    def reload(self) -> bool:
        """Load key files not loaded yet; True if a new key was found.

        Files are decrypted only when the set of files (names, sizes, times)
        changed since the last look: asking for a key nobody installed costs
        a directory listing, not a key derivation.
        """
        if self._key_file is None or self._passphrase is None:
            return False
        paths = key_files(self._key_file)
        seen = tuple((str(p), st.st_mtime_ns, st.st_size) for p in paths for st in (p.stat(),))
        if seen == self._seen:
            return False
        self._seen = seen
        new = False
        for path in paths:
            try:
                signer = load_key(path, self._passphrase)
            except KeyFileError as exc:
                log.warning("key file %s skipped: %s", path, exc)
                continue
            if signer.public.key_id not in self._signers:
                self._signers[signer.public.key_id] = signer
                log.warning("loaded key %s from %s", signer.public.key_id[:16], path.name)
                new = True
        return new
