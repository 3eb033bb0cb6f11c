"""Ed25519 signatures and key ids (pure computation, no files).

A key id is the lower-case hex SHA-256 of the raw 32-byte public key.
Signatures always cover ``Tag || canonical bytes``; verification takes the
exact bytes that were signed and never re-serialises anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kpledger.ledger.canonical import Tag, from_hex, sha256
from kpledger.ledger.errors import SignatureError

__all__ = ["Ed25519Signer", "PublicKey", "Signer", "key_id_of"]


def key_id_of(public_raw: bytes) -> str:
    """Key id: hex SHA-256 of the raw public key."""
    return sha256(public_raw).hex()


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key; prints as ``ed25519:<key id>``."""

    raw: bytes
    _key: Ed25519PublicKey = field(repr=False, compare=False, hash=False)

    @classmethod
    def from_raw(cls, raw: bytes, *, field: str = "key") -> PublicKey:
        if len(raw) != 32:
            raise SignatureError(f"an Ed25519 public key has 32 bytes, got {len(raw)}", field=field)
        try:
            key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise SignatureError(f"not an Ed25519 public key: {exc}", field=field) from exc
        return cls(raw, key)

    @classmethod
    def from_hex(cls, text: object, *, field: str = "key") -> PublicKey:
        return cls.from_raw(from_hex(text, field=field, size=32), field=field)

    @property
    def key_id(self) -> str:
        return key_id_of(self.raw)

    def hex(self) -> str:
        return self.raw.hex()

    def verify(self, tag: Tag, payload: bytes, signature: bytes, *, field: str = "sig") -> None:
        """Raise ``SignatureError`` unless ``signature`` signs ``tag || payload``."""
        if len(signature) != 64:
            raise SignatureError(
                f"an Ed25519 signature has 64 bytes, got {len(signature)}", field=field
            )
        try:
            self._key.verify(signature, tag.value + payload)
        except InvalidSignature as exc:
            raise SignatureError(
                f"signature does not verify under key {self.key_id[:16]}", field=field
            ) from exc

    def __str__(self) -> str:
        return f"ed25519:{self.key_id}"


class Signer(Protocol):
    """Anything that can sign for one key (an in-memory key, an HSM, ...)."""

    @property
    def public(self) -> PublicKey: ...

    def sign(self, tag: Tag, payload: bytes) -> bytes: ...


class Ed25519Signer:
    """An in-memory Ed25519 private key. Never printed, never serialised here."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._public = PublicKey.from_raw(raw)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519Signer:
        """Deterministic key from a 32-byte seed (tests and benchmarks only)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public(self) -> PublicKey:
        return self._public

    @property
    def private_key(self) -> Ed25519PrivateKey:
        return self._private

    def sign(self, tag: Tag, payload: bytes) -> bytes:
        return self._private.sign(tag.value + payload)

    def __repr__(self) -> str:
        return f"Ed25519Signer({self._public})"
