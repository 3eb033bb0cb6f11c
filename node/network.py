"""Creating a local network: genesis registry, keys, secrets and one config per node.

``init_network`` writes, under ``out``::

    genesis.json             the registry, signed by the governance threshold
    secrets.toml             mode 0600: every passphrase and token of this network
    governance/gov-N.key     governance keys (encrypted)
    <CODE>/node.key          each participant's key (encrypted)
    <CODE>/node.toml         each node's configuration (no secrets inside)

One secrets file is a convenience for a network on one machine. A real
deployment keeps each authority's passphrase and tokens in its own secret
store and passes them as ``KPL_PASSPHRASE`` and ``KPL_PEER_TOKEN``.
Nothing is written if ``out`` already holds a network, and a failure half-way
removes what was written.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from keys import save_key
from ledger.crypto import Ed25519Signer
from ledger.errors import InvalidData
from ledger.registry import Params, Participant, Registry
from ledger.schema import CODE
from ledger.workload import NAMES
from node.config import hash_token

__all__ = ["NetworkLayout", "init_network"]


@dataclass(frozen=True)
class NetworkLayout:
    root: Path
    registry: Registry
    configs: dict[str, Path]
    urls: dict[str, str]
    secrets: Path


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def init_network(
    out: Path,
    participants: Sequence[str],
    auditors: Sequence[str] = ("WDC",),
    *,
    base_port: int = 8100,
    host: str = "127.0.0.1",
    governance: int = 3,
    threshold: int = 2,
    params: Params | None = None,
    block_interval: float = 0.5,
    heartbeat: float = 5.0,
    gossip_interval: float = 0.5,
    fanout: int = 3,
    database_url: str | None = None,
) -> NetworkLayout:
    codes = [*participants, *auditors]
    for code in codes:
        if CODE.match(code) is None:
            raise InvalidData(
                f"{code!r} is not a participant code (2-8 capital letters)", field="participants"
            )
    if len(set(codes)) != len(codes):
        raise InvalidData("participant codes repeat", field="participants")
    if not participants:
        raise InvalidData("a network needs at least one authority", field="participants")
    if not 1 <= threshold <= governance:
        raise InvalidData(f"threshold must be 1..{governance}", field="threshold")
    if not 1024 <= base_port <= 65535 - len(codes):
        raise InvalidData("base port out of range", field="base_port")
    if (out / "genesis.json").exists():
        raise InvalidData(f"{out} already holds a network (genesis.json exists)", field="out")
    created_root = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _write(
            out,
            list(participants),
            list(auditors),
            base_port,
            host,
            governance,
            threshold,
            params or Params(),
            block_interval,
            heartbeat,
            gossip_interval,
            fanout,
            database_url,
        )
    except BaseException:
        if created_root:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for code in codes:
                shutil.rmtree(out / code, ignore_errors=True)
            shutil.rmtree(out / "governance", ignore_errors=True)
            for name in ("genesis.json", "secrets.toml"):
                (out / name).unlink(missing_ok=True)
        raise


def _write(
    out: Path,
    authorities: list[str],
    auditors: list[str],
    base_port: int,
    host: str,
    governance: int,
    threshold: int,
    params: Params,
    block_interval: float,
    heartbeat: float,
    gossip_interval: float,
    fanout: int,
    database_url: str | None,
) -> NetworkLayout:
    codes = [*authorities, *auditors]
    urls = {c: f"http://{host}:{base_port + i + 1}" for i, c in enumerate(codes)}
    signers = {c: Ed25519Signer.generate() for c in codes}
    gov = [Ed25519Signer.generate() for _ in range(governance)]
    registry = Registry.create(
        name="kpledger-local",
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        participants=[
            Participant(
                c,
                NAMES.get(c, c),
                "authority" if c in authorities else "auditor",
                urls[c],
                signers[c].public,
            )
            for c in codes
        ],
        governance=gov,
        threshold=threshold,
        params=params,
    )
    (out / "genesis.json").write_bytes(registry.to_bytes())
    secret_lines = [
        "# kpledger local network secrets: keep this file private (mode 0600).",
        "# Real deployments keep each authority's secrets in its own store.",
        "",
    ]
    gov_pass = secrets.token_urlsafe(24)
    (out / "governance").mkdir()
    for i, g in enumerate(gov):
        save_key(out / "governance" / f"gov-{i}.key", g, gov_pass.encode())
    secret_lines += ["[governance]", f"passphrase = {_toml_str(gov_pass)}", ""]
    tokens = {
        c: {
            "passphrase": secrets.token_urlsafe(24),
            "peer_token": secrets.token_urlsafe(32),
            "operator_token": secrets.token_urlsafe(32),
        }
        for c in authorities
    }
    for c in auditors:
        tokens[c] = {
            "passphrase": secrets.token_urlsafe(24),
            "peer_token": secrets.token_urlsafe(32),
            "auditor_token": secrets.token_urlsafe(32),
        }
    configs: dict[str, Path] = {}
    for code in codes:
        folder = out / code
        folder.mkdir()
        save_key(folder / "node.key", signers[code], tokens[code]["passphrase"].encode())
        port = int(urls[code].rsplit(":", 1)[1])
        lines = [
            "# kpledger node configuration; every key is described in the README.",
            "[node]",
            f"code = {_toml_str(code)}",
            f"listen = {_toml_str(f'{host}:{port}')}",
            f"url = {_toml_str(urls[code])}",
            'data_dir = "."',
            f"database_url = {_toml_str(database_url or '')}",
            'registry = "../genesis.json"',
        ]
        if code in authorities:
            lines.append('key_file = "node.key"')
        lines += [
            'secrets = "../secrets.toml"',
            "",
            "[blocks]",
            f"interval = {block_interval}",
            "max_records = 1000",
            f"heartbeat = {heartbeat}",
            "",
            "[gossip]",
            f"fanout = {fanout}",
            f"interval = {gossip_interval}",
            "batch = 256",
            "timeout = 5.0",
            "peers = [",
        ]
        lines += [
            f"  {{ code = {_toml_str(p)}, url = {_toml_str(urls[p])} }},"
            for p in codes
            if p != code
        ]
        lines += ["]", ""]
        for p in codes:
            if p != code:
                lines += [
                    "[[tokens]]",
                    'role = "peer"',
                    f"name = {_toml_str(p)}",
                    f"sha256 = {_toml_str(hash_token(tokens[p]['peer_token']))}",
                    "",
                ]
        if code in authorities:
            lines += [
                "[[tokens]]",
                'role = "operator"',
                f"name = {_toml_str(code + '-operator')}",
                f"sha256 = {_toml_str(hash_token(tokens[code]['operator_token']))}",
                "",
            ]
        for a in auditors:
            lines += [
                "[[tokens]]",
                'role = "auditor"',
                f"name = {_toml_str(a)}",
                f"sha256 = {_toml_str(hash_token(tokens[a]['auditor_token']))}",
                "",
            ]
        (folder / "node.toml").write_text("\n".join(lines), encoding="utf-8")
        configs[code] = folder / "node.toml"
        secret_lines.append(f"[{code}]")
        secret_lines += [f"{k} = {_toml_str(v)}" for k, v in tokens[code].items()]
        secret_lines.append("")
    _write_private(out / "secrets.toml", "\n".join(secret_lines))
    return NetworkLayout(out, registry, configs, urls, out / "secrets.toml")
