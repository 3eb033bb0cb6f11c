"""Creating a local network: genesis registry, keys, secrets and one config per node.

``init_network`` writes, under ``out``::

    genesis.json             the registry, signed by the governance threshold
    secrets.toml             mode 0600: every passphrase and token of this network
    governance/gov-N.key     governance keys (encrypted)
    <CODE>/node.key          each participant's key (encrypted)
    <CODE>/node.toml         each node's configuration (no secrets inside)

With ``tls`` it also writes a network certificate authority and one
certificate per node (``node.tls``: ECDSA P-256; the node's code in lower
case, ``localhost`` and ``127.0.0.1`` as names), and every node talks HTTPS
with mutual TLS::

    tls/ca.pem, tls/ca-key.pem   the network CA (keep ca-key.pem offline, mode 0600)
    <CODE>/tls/ca.pem            a copy of the CA certificate: peers are checked against it
    <CODE>/tls/node.pem          the node's certificate (server and client)
    <CODE>/tls/node-key.pem      its private key (mode 0600)

With ``docker`` (which implies ``tls``) each node's folder is what its
container mounts at ``/etc/kpl`` (see ``docker/compose.yaml``): the node
listens on ``0.0.0.0``, peers are reached by service name (``https://bw:8101``),
each node has its own PostgreSQL service (``db-bw``), a copy of
``genesis.json`` sits beside ``node.toml``, and the node's secrets are one
file each under ``<CODE>/secrets/`` (``passphrase``, ``peer_token``,
``database_password``, mode 0600) for Docker secrets; ``compose.env`` holds
the user and group ids the containers run as (the owner of those files).

One secrets file is a convenience for a network on one machine. A real
deployment keeps each authority's passphrase and tokens in its own secret
store and passes them as ``KPL_PASSPHRASE`` and ``KPL_PEER_TOKEN`` (or files
named by ``KPL_PASSPHRASE_FILE`` and ``KPL_PEER_TOKEN_FILE``).
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
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from kpledger.keys import save_key, write_private
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.kpdata import PARTICIPANT_NAMES
from kpledger.ledger.registry import Params, Participant, Registry
from kpledger.ledger.schema import CODE
from kpledger.node.config import hash_token, write_config
from kpledger.node.tls import issue_node_certificate, make_ca

__all__ = [
    "NetworkLayout",
    "db_service",
    "init_network",
    "node_config_doc",
    "service_name",
]

#: the database every node's PostgreSQL service holds, and its user (docker layout)
DOCKER_DB = "kpl"
DOCKER_DATA_DIR = "/var/lib/kpl"


def service_name(code: str) -> str:
    """The compose service (and TLS name) of a participant's node: ``BW`` -> ``bw``."""
    return code.lower()


def db_service(code: str) -> str:
    """The compose service of a node's PostgreSQL: ``BW`` -> ``db-bw``."""
    return f"db-{code.lower()}"


@dataclass(frozen=True)
class NetworkLayout:
    root: Path
    registry: Registry
    configs: dict[str, Path]
    urls: dict[str, str]
    secrets: Path


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_options(
    codes: Sequence[str],
    participants: Sequence[str],
    how: _Layout,
    base_port: int,
    governance: int,
    threshold: int,
) -> None:
    """Refuse options ``init_network`` cannot write, naming the option."""
    tls, api_base_port = how.tls, how.api_base_port
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
    if api_base_port is not None:
        if not tls:
            raise InvalidData("a separate API listener needs --tls", field="api_base_port")
        if not 1024 <= api_base_port <= 65535 - len(codes) or abs(api_base_port - base_port) < len(
            codes
        ):
            raise InvalidData("API base port out of range or overlapping", field="api_base_port")


def init_network(  # noqa: PLR0913 - keyword options, one per `kpl network init` flag
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
    tls: bool = False,
    docker: bool = False,
    api_base_port: int | None = None,
) -> NetworkLayout:
    """Write a new network under ``out`` (see the module's docstring for the layout)."""
    codes = [*participants, *auditors]
    if docker:
        tls = True
        if api_base_port is None:
            api_base_port = base_port + 100
        if database_url is not None:
            raise InvalidData(
                "a docker network gives each node its own PostgreSQL service", field="database_url"
            )
    how = _Layout(tls=tls, docker=docker, api_base_port=api_base_port)
    _check_options(codes, participants, how, base_port, governance, threshold)
    if (out / "genesis.json").exists():
        raise InvalidData(f"{out} already holds a network (genesis.json exists)", field="out")
    codes_ports = {c: base_port + i + 1 for i, c in enumerate(codes)}
    scheme = "https" if tls else "http"
    where = {c: service_name(c) if docker else host for c in codes}
    plan = _Plan(
        authorities=list(participants),
        auditors=list(auditors),
        host=host,
        ports=codes_ports,
        urls={c: f"{scheme}://{where[c]}:{codes_ports[c]}" for c in codes},
        timing={
            "blocks": {"interval": block_interval, "heartbeat": heartbeat},
            "gossip": {"fanout": fanout, "interval": gossip_interval},
        },
        database_url=database_url,
        how=how,
    )
    created_root = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return _write(out, plan, governance, threshold, params or Params())
    except BaseException:
        if created_root:
            shutil.rmtree(out, ignore_errors=True)
        else:
            for code in codes:
                shutil.rmtree(out / code, ignore_errors=True)
            shutil.rmtree(out / "governance", ignore_errors=True)
            shutil.rmtree(out / "tls", ignore_errors=True)
            for name in ("genesis.json", "secrets.toml", "compose.env"):
                (out / name).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class _Layout:
    tls: bool = False
    docker: bool = False
    api_base_port: int | None = None


@dataclass(frozen=True)
class _Plan:
    """Everything ``_write`` decided before writing: codes, addresses, timing."""

    authorities: list[str]
    auditors: list[str]
    host: str
    ports: dict[str, int]
    urls: dict[str, str]
    timing: dict[str, dict[str, Any]]
    database_url: str | None
    how: _Layout

    @property
    def codes(self) -> list[str]:
        return [*self.authorities, *self.auditors]


def node_config_doc(
    node: dict[str, Any],
    *,
    peers: dict[str, str],
    tokens: list[dict[str, str]],
    timing: dict[str, dict[str, Any]],
    tls: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The document of one ``node.toml`` (written by ``node.config.write_config``).

    ``node`` is the ``[node]`` table (code, listen, url, data_dir, registry, ...);
    ``peers`` maps each peer's code to its URL; ``tokens`` are ``[[tokens]]``
    entries (role, name, sha256); ``timing`` holds ``blocks`` and ``gossip`` settings.
    """
    doc: dict[str, Any] = {"node": node}
    if tls is not None:
        doc["tls"] = tls
    doc["blocks"] = {"interval": 0.5, "max_records": 1000, "heartbeat": 5.0, **timing["blocks"]}
    doc["gossip"] = {
        "fanout": 3,
        "interval": 0.5,
        "batch": 256,
        "timeout": 5.0,
        **timing["gossip"],
        "peers": [{"code": p, "url": u} for p, u in peers.items()],
    }
    doc["tokens"] = tokens
    return doc


def _token(role: str, name: str, token: str) -> dict[str, str]:
    return {"role": role, "name": name, "sha256": hash_token(token)}


def _tokens_of(code: str, plan: _Plan, tokens: dict[str, dict[str, str]]) -> list[dict[str, str]]:
    """What ``code``'s node accepts: every peer's token, its operator's, every auditor's."""
    accepted = [_token("peer", p, tokens[p]["peer_token"]) for p in plan.codes if p != code]
    if code in plan.authorities:
        accepted.append(_token("operator", f"{code}-operator", tokens[code]["operator_token"]))
    accepted += [_token("auditor", a, tokens[a]["auditor_token"]) for a in plan.auditors]
    return accepted


def _new_tokens(plan: _Plan) -> dict[str, dict[str, str]]:
    tokens: dict[str, dict[str, str]] = {}
    for c in plan.codes:
        kind = "operator_token" if c in plan.authorities else "auditor_token"
        tokens[c] = {
            "passphrase": secrets.token_urlsafe(24),
            "peer_token": secrets.token_urlsafe(32),
            kind: secrets.token_urlsafe(32),
        }
        if plan.how.docker:
            tokens[c]["database_password"] = secrets.token_urlsafe(24)
    return tokens


def _node_folder(
    out: Path,
    code: str,
    plan: _Plan,
    registry: Registry,
    tokens: dict[str, dict[str, str]],
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None,
) -> Path:
    """Write ``out/CODE``: its docker files if any, its TLS files if any, ``node.toml``."""
    folder = out / code
    how = plan.how
    port = plan.ports[code]
    if how.docker:
        (folder / "genesis.json").write_bytes(registry.to_bytes())
        (folder / "secrets").mkdir(mode=0o700)
        for name in ("passphrase", "peer_token", "database_password"):
            write_private(folder / "secrets" / name, tokens[code][name] + "\n")
        listen = f"0.0.0.0:{port}"
        node = {
            "data_dir": DOCKER_DATA_DIR,
            "database_url": f"postgresql+psycopg://{DOCKER_DB}@{db_service(code)}:5432/{DOCKER_DB}",
        }
        registry_path = "genesis.json"
    else:
        listen = f"{plan.host}:{port}"
        node = {"data_dir": ".", "database_url": plan.database_url or ""}
        registry_path = "../genesis.json"
    tls: dict[str, str] | None = None
    if ca is not None:
        names = [service_name(code), "localhost", "127.0.0.1"]
        if not how.docker and plan.host not in ("0.0.0.0", "::"):  # noqa: S104 - not a bind
            names.append(plan.host)
        issue_node_certificate(ca[0], ca[1], code, names, folder / "tls")
        tls = {"cert": "tls/node.pem", "key": "tls/node-key.pem", "ca": "tls/ca.pem"}
        if how.api_base_port is not None:
            api_host = "0.0.0.0" if how.docker else plan.host  # noqa: S104 - in a container
            api_port = how.api_base_port + plan.codes.index(code) + 1
            tls["api_listen"] = f"{api_host}:{api_port}"
    table: dict[str, Any] = {"code": code, "listen": listen, "url": plan.urls[code], **node}
    table["registry"] = registry_path
    if code in plan.authorities:
        table["key_file"] = "node.key"
    if not how.docker:
        table["secrets"] = "../secrets.toml"
    doc = node_config_doc(
        table,
        peers={p: plan.urls[p] for p in plan.codes if p != code},
        tokens=_tokens_of(code, plan, tokens),
        timing=plan.timing,
        tls=tls,
    )
    return write_config(folder / "node.toml", doc)


def _write(
    out: Path,
    plan: _Plan,
    governance: int,
    threshold: int,
    params: Params,
) -> NetworkLayout:
    codes = plan.codes
    signers = {c: Ed25519Signer.generate() for c in codes}
    gov = [Ed25519Signer.generate() for _ in range(governance)]
    registry = Registry.create(
        name="kpledger-local",
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        participants=[
            Participant(
                c,
                PARTICIPANT_NAMES.get(c, c),
                "authority" if c in plan.authorities else "auditor",
                plan.urls[c],
                signers[c].public,
            )
            for c in codes
        ],
        governance=gov,
        threshold=threshold,
        params=params,
        # the KP secretariat seals chain KP
        sealer=plan.authorities[0] if plan.authorities else None,
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
    tokens = _new_tokens(plan)
    ca = make_ca(out / "tls", registry.name) if plan.how.tls else None
    configs: dict[str, Path] = {}
    for code in codes:
        (out / code).mkdir()
        save_key(out / code / "node.key", signers[code], tokens[code]["passphrase"].encode())
        configs[code] = _node_folder(out, code, plan, registry, tokens, ca)
        secret_lines.append(f"[{code}]")
        secret_lines += [f"{k} = {_toml_str(v)}" for k, v in tokens[code].items()]
        secret_lines.append("")
    write_private(out / "secrets.toml", "\n".join(secret_lines))
    if plan.how.docker:
        (out / "compose.env").write_text(
            "# user and group the node containers run as: the owner of the key and secret files\n"
            f"KPL_UID={os.getuid()}\nKPL_GID={os.getgid()}\n",
            encoding="utf-8",
        )
    return NetworkLayout(out, registry, configs, plan.urls, out / "secrets.toml")
