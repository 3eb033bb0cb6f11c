"""Identity key files on disk (the layer above ``ledger``, which does no I/O)."""

from __future__ import annotations

from kpledger.keys.keyfile import (
    generate_key_file,
    load_key,
    load_public_key,
    passphrase_from_env,
    read_passphrase,
    save_key,
    write_private,
    write_public_key,
)

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
