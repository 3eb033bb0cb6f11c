"""Peers and peer tokens of a running node, changed without a restart.

Admitting a participant adds a node to the network. Every node must then
reach it (``gossip.peers``) and accept its peer token (``[[tokens]]``), and it
must reach them and accept theirs. ``kpl network add-peer`` writes those two
entries into a ``node.toml``; a running node notices the file changed (its
modification time, checked at each gossip round), reads it again strictly,
and takes its new ``gossip.peers`` and ``[[tokens]]``. Nothing else of the
file is taken while running: every other key needs a restart. A file that no
longer loads is logged and ignored; the node keeps what it had.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kpledger.keys import save_key, write_private, write_public_key
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import GOVERNANCE_CHAIN
from kpledger.ledger.registry import Registry
from kpledger.ledger.schema import CODE
from kpledger.node.config import ConfigError, NodeConfig, dump_config, hash_token

__all__ = ["ConfigWatch", "JoinLayout", "add_peer", "join_network"]

log = logging.getLogger("kpl.node")


class ConfigWatch:
    """Re-reads a node's configuration file when it changes; hands back the new one."""

    def __init__(self, config: NodeConfig) -> None:
        self.path = config.path
        # the first check always reads the file: it may have changed between the
        # node's start and this watch's creation
        self._stamp = -1

    def _mtime(self) -> int:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return 0

    def changed(self, current: NodeConfig) -> NodeConfig | None:
        """The configuration with the file's peers and tokens, if the file changed."""
        stamp = self._mtime()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            fresh = NodeConfig.load(self.path)
        except ConfigError as exc:
            log.warning("%s changed but cannot be used (keeping the old peers): %s", self.path, exc)
            return None
        if fresh.code != current.code:
            log.warning("%s now names node %s: ignored until a restart", self.path, fresh.code)
            return None
        if fresh.peers == current.peers and fresh.tokens == current.tokens:
            return None
        log.warning(
            "%s changed: %d peers, %d tokens now", self.path, len(fresh.peers), len(fresh.tokens)
        )
        return dataclasses.replace(current, peers=fresh.peers, tokens=fresh.tokens)


# ---------------------------------------------------------------- editing node.toml


def add_peer(
    config_path: Path,
    code: str,
    url: str,
    *,
    token_sha256: str | None = None,
    token: str | None = None,
) -> NodeConfig:
    """Add (or update) peer ``code`` at ``url`` and accept its peer token; write atomically.

    The result is loaded back strictly before it replaces the file, so a bad
    value never reaches a running node.
    """
    digest = token_sha256 or (hash_token(token) if token else None)
    if digest is None:
        raise ConfigError("add-peer needs the peer's token or its SHA-256")
    path = config_path.resolve()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    gossip = doc.setdefault("gossip", {})
    peers = [p for p in gossip.get("peers", []) if p.get("code") != code]
    gossip["peers"] = [*peers, {"code": code, "url": url}]
    tokens = [
        t for t in doc.get("tokens", []) if not (t.get("role") == "peer" and t.get("name") == code)
    ]
    doc["tokens"] = [*tokens, {"role": "peer", "name": code, "sha256": digest}]
    text = dump_config(doc)
    fd, tmp = tempfile.mkstemp(prefix=".node.", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        NodeConfig.load(Path(tmp))  # refuse before replacing anything
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return NodeConfig.load(path)


# ---------------------------------------------------------------- a joining node's folder


@dataclass(frozen=True)
class JoinLayout:
    """What ``join_network`` wrote for a participant to be admitted."""

    code: str
    name: str
    url: str
    folder: Path
    config: Path
    public_key: Path
    key_id: str
    peer_token_sha256: str


def join_network(
    registry_path: Path,
    out: Path,
    *,
    code: str,
    name: str,
    url: str,
    listen: str | None = None,
) -> JoinLayout:
    """Write a new participant's node folder: key, secrets, node.toml, genesis copy.

    The node is an authority-to-be: it replicates the network and writes its
    own chain once the governance chain admits it with this key. Its peers are
    the registry's participants (each operator still has to add it back: see
    ``add_peer``). Refuses an existing folder, a code already in the registry,
    or a URL that is not ``http(s)://HOST:PORT``.
    """
    registry = Registry.parse(registry_path.read_bytes())
    if CODE.match(code) is None:
        raise InvalidData(f"--code {code!r} is not a participant code (2 to 8 capitals)")
    if code == GOVERNANCE_CHAIN or registry.participant(code) is not None:
        raise InvalidData(f"{code} is already a participant of the genesis registry")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
        raise InvalidData(f"--url {url!r}: expected http(s)://HOST:PORT")
    if out.exists():
        raise InvalidData(f"{out} exists: the new node gets a folder of its own")
    out.mkdir(parents=True)
    try:
        passphrase = secrets.token_urlsafe(24)
        peer_token = secrets.token_urlsafe(32)
        operator_token = secrets.token_urlsafe(32)
        signer = Ed25519Signer.generate()
        save_key(out / "node.key", signer, passphrase.encode())
        write_public_key(out / "node.pub", signer.public)
        (out / "genesis.json").write_bytes(registry.to_bytes())
        write_private(
            out / "secrets.toml",
            f"[{code}]\n"
            f"passphrase = {json.dumps(passphrase)}\n"
            f"peer_token = {json.dumps(peer_token)}\n"
            f"operator_token = {json.dumps(operator_token)}\n",
        )
        doc: dict[str, Any] = {
            "node": {
                "code": code,
                "listen": listen or f"{parts.hostname}:{parts.port}",
                "url": url,
                "data_dir": ".",
                "registry": "genesis.json",
                "key_file": "node.key",
                "secrets": "secrets.toml",
            },
            "gossip": {
                "peers": [{"code": p.code, "url": p.url} for p in registry.participants],
            },
            "tokens": [
                {
                    "role": "operator",
                    "name": f"{code}-operator",
                    "sha256": hash_token(operator_token),
                }
            ],
        }
        (out / "node.toml").write_text(dump_config(doc), encoding="utf-8")
        NodeConfig.load(out / "node.toml")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return JoinLayout(
        code,
        name,
        url,
        out,
        out / "node.toml",
        out / "node.pub",
        signer.public.key_id,
        hash_token(peer_token),
    )
