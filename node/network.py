"""Creating a local network: genesis registry, keys, secrets and one config per node.

``init_network`` writes, under ``out``::

    genesis.json             the registry, signed by the governance threshold
    secrets.toml             mode 0600: every passphrase and token of this network
    governance/gov-N.key     governance keys (encrypted)
    <CODE>/node.key          each participant's key (encrypted)
    <CODE>/node.toml         each node's configuration (no secrets inside)

With ``tls`` it also writes a network certificate authority and one
certificate per node (ECDSA P-256; the node's code in lower case, ``localhost``
and ``127.0.0.1`` as names), and every node talks HTTPS with mutual TLS::

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

import ipaddress
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys import save_key
from ledger.crypto import Ed25519Signer
from ledger.errors import InvalidData
from ledger.registry import Params, Participant, Registry
from ledger.schema import CODE
from ledger.workload import NAMES
from node.config import hash_token

__all__ = [
    "NetworkLayout",
    "db_service",
    "init_network",
    "issue_node_certificate",
    "load_ca",
    "service_name",
]

#: the database every node's PostgreSQL service holds, and its user (docker layout)
DOCKER_DB = "kpl"
DOCKER_DATA_DIR = "/var/lib/kpl"
CA_DAYS = 3650
NODE_CERT_DAYS = 825


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


def _write_private(path: Path, text: str | bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode("utf-8") if isinstance(text, str) else text)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- TLS


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _make_ca(folder: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A network CA under ``folder``: ``ca.pem`` and ``ca-key.pem`` (0600, keep it offline)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kpledger"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} network CA"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(folder / "ca-key.pem", _key_pem(key))
    (folder / "ca.pem").write_bytes(_cert_pem(cert))
    return key, cert


def load_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The network CA written by ``init_network(..., tls=True)`` (``ca.pem``, ``ca-key.pem``)."""
    try:
        key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidData(f"{folder}: not a kpledger network CA: {exc}", field="ca") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidData(f"{folder}/ca-key.pem: expected an EC key", field="ca")
    return key, cert


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_node_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    code: str,
    names: Sequence[str],
    folder: Path,
    *,
    days: int = NODE_CERT_DAYS,
) -> Path:
    """Write ``ca.pem``, ``node.pem`` and ``node-key.pem`` (0600) for ``code`` in ``folder``.

    The certificate serves both ends of mutual TLS (server and client
    authentication) for the DNS names and IP addresses in ``names``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    unique = list(dict.fromkeys(names))
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kpledger"),
                    x509.NameAttribute(NameOID.COMMON_NAME, code),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in unique]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("node-key.pem", "node.pem", "ca.pem"):
        (folder / name).unlink(missing_ok=True)
    _write_private(folder / "node-key.pem", _key_pem(key))
    (folder / "node.pem").write_bytes(_cert_pem(cert))
    (folder / "ca.pem").write_bytes(_cert_pem(ca_cert))
    return folder / "node.pem"


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
    tls: bool = False,
    docker: bool = False,
    api_base_port: int | None = None,
) -> NetworkLayout:
    """Write a new network under ``out`` (see the module's docstring for the layout)."""
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
    if docker:
        tls = True
        if api_base_port is None:
            api_base_port = base_port + 100
        if database_url is not None:
            raise InvalidData(
                "a docker network gives each node its own PostgreSQL service", field="database_url"
            )
    if api_base_port is not None:
        if not tls:
            raise InvalidData("a separate API listener needs --tls", field="api_base_port")
        if not 1024 <= api_base_port <= 65535 - len(codes) or abs(api_base_port - base_port) < len(
            codes
        ):
            raise InvalidData("API base port out of range or overlapping", field="api_base_port")
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
            _Layout(tls=tls, docker=docker, api_base_port=api_base_port),
        )
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
    how: _Layout,
) -> NetworkLayout:
    codes = [*authorities, *auditors]
    scheme = "https" if how.tls else "http"
    ports = {c: base_port + i + 1 for i, c in enumerate(codes)}
    if how.docker:
        urls = {c: f"{scheme}://{service_name(c)}:{ports[c]}" for c in codes}
    else:
        urls = {c: f"{scheme}://{host}:{ports[c]}" for c in codes}
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
        sealer=authorities[0] if authorities else None,  # the KP secretariat seals chain KP
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
    if how.docker:
        for c in codes:
            tokens[c]["database_password"] = secrets.token_urlsafe(24)
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None
    if how.tls:
        ca = _make_ca(out / "tls", registry.name)
    configs: dict[str, Path] = {}
    for code in codes:
        folder = out / code
        folder.mkdir()
        save_key(folder / "node.key", signers[code], tokens[code]["passphrase"].encode())
        port = ports[code]
        if how.docker:
            (folder / "genesis.json").write_bytes(registry.to_bytes())
            (folder / "secrets").mkdir(mode=0o700)
            for name in ("passphrase", "peer_token", "database_password"):
                _write_private(folder / "secrets" / name, tokens[code][name] + "\n")
            listen = f"0.0.0.0:{port}"
            data_dir = DOCKER_DATA_DIR
            db_url = f"postgresql+psycopg://{DOCKER_DB}@{db_service(code)}:5432/{DOCKER_DB}"
            registry_path = "genesis.json"
        else:
            listen = f"{host}:{port}"
            data_dir = "."
            db_url = database_url or ""
            registry_path = "../genesis.json"
        lines = [
            "# kpledger node configuration; every key is described in the README.",
            "[node]",
            f"code = {_toml_str(code)}",
            f"listen = {_toml_str(listen)}",
            f"url = {_toml_str(urls[code])}",
            f"data_dir = {_toml_str(data_dir)}",
            f"database_url = {_toml_str(db_url)}",
            f"registry = {_toml_str(registry_path)}",
        ]
        if code in authorities:
            lines.append('key_file = "node.key"')
        if not how.docker:
            lines.append('secrets = "../secrets.toml"')
        if ca is not None:
            names = [service_name(code), "localhost", "127.0.0.1"]
            if not how.docker and host not in ("0.0.0.0", "::"):  # noqa: S104 - not a bind
                names.append(host)
            issue_node_certificate(ca[0], ca[1], code, names, folder / "tls")
            lines += [
                "",
                "[tls]",
                'cert = "tls/node.pem"',
                'key = "tls/node-key.pem"',
                'ca = "tls/ca.pem"',
            ]
            if how.api_base_port is not None:
                api_host = "0.0.0.0" if how.docker else host  # noqa: S104 - in a container
                api_port = how.api_base_port + codes.index(code) + 1
                lines.append(f"api_listen = {_toml_str(f'{api_host}:{api_port}')}")
        lines += [
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
    if how.docker:
        (out / "compose.env").write_text(
            "# user and group the node containers run as: the owner of the key and secret files\n"
            f"KPL_UID={os.getuid()}\nKPL_GID={os.getgid()}\n",
            encoding="utf-8",
        )
    return NetworkLayout(out, registry, configs, urls, out / "secrets.toml")
