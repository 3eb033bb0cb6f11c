"""A node's configuration file (TOML), read strictly.

Every key is documented in the README ("Node configuration"). Paths are
relative to the configuration file's folder. An unknown key, a wrong type or
a value out of range is refused with the file, the key and what was expected.

Secrets never live in the configuration itself: the key passphrase, the
node's outgoing peer token and a PostgreSQL password come from environment
variables (``KPL_PASSPHRASE``, ``KPL_PEER_TOKEN``, ``KPL_DATABASE_PASSWORD``),
from files named by ``<VARIABLE>_FILE`` (Docker secrets), or from a ``secrets``
TOML file that must be owner-only (mode 0600); API tokens are stored as
SHA-256 hashes.

One concept, a little over 500 lines: the node's configuration file, its
typed view (``NodeConfig`` and one class per table), the strict reader (one
method per table) and the TOML writer that ``kpl network init`` and ``kpl
network join`` use (``dump_config``, ``write_config``, ``edit_config``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from kpledger.ledger.certcode import check_base_url
from kpledger.ledger.errors import InvalidData, SchemaError
from kpledger.ledger.schema import CODE

__all__ = [
    "ConfigError",
    "HttpLimits",
    "NodeConfig",
    "PeerConfig",
    "TlsConfig",
    "TokenConfig",
    "dump_config",
    "edit_config",
    "hash_token",
    "write_config",
]

#: token roles; ``observer`` (civil society) reads statistics, internal controls,
#: diagnostics and audit findings, never commercial data
ROLES = frozenset({"operator", "auditor", "peer", "party", "observer"})
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
_HOSTPORT = re.compile(r"\A(?P<host>[0-9A-Za-z.\-]+|\[[0-9a-fA-F:]+\]):(?P<port>\d{1,5})\Z")


class ConfigError(InvalidData):
    """A configuration or secrets file is unusable; names the file and the key."""

    code = "config"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PeerConfig:
    code: str
    url: str


@dataclass(frozen=True)
class TokenConfig:
    role: str
    name: str
    sha256: str
    party: str | None = None


@dataclass(frozen=True)
class TlsConfig:
    cert: Path
    key: Path
    ca: Path | None = None  # peers' CA: when set, peers must present certificates it signed
    # an optional second listener for API clients: server certificate only, no client
    # certificate asked (the node's own listener keeps mutual TLS for peers)
    api_host: str | None = None
    api_port: int | None = None
    api_cert: Path | None = None
    api_key: Path | None = None


@dataclass(frozen=True)
class HttpLimits:
    """``[http]``: what a client may hold of the node (README, "Slow and hostile clients")."""

    header_timeout: float = 10.0  # seconds to deliver a request's headers
    body_timeout: float = 30.0  # seconds to deliver a request's body, after its headers
    keep_alive: float = 5.0  # seconds an idle connection stays open between requests
    max_connections: int = 1000  # per listener, capped below the open-file limit
    verify_max_bytes: int = 1024 * 1024  # POST /v1/bundles/verify body, without a token
    verify_concurrency: int = 2  # bundle verifications at once; more get 503


@dataclass(frozen=True)
class NodeConfig:
    path: Path
    code: str
    host: str
    port: int
    url: str
    data_dir: Path
    database_url: str
    registry: Path
    key_file: Path | None
    secrets: Path | None
    block_interval: float = 1.0
    max_block_records: int = 1000
    heartbeat: float = 5.0
    peers: tuple[PeerConfig, ...] = ()
    fanout: int = 3
    #: peers a block this node seals is pushed to at once (at least ``fanout``)
    push_peers: int = 16
    gossip_interval: float = 1.0
    pull_batch: int = 256
    peer_timeout: float = 5.0
    max_buffered_blocks: int = 4096
    tokens: tuple[TokenConfig, ...] = field(default_factory=tuple)
    tls: TlsConfig | None = None
    writer_retry: float = 2.0  # PostgreSQL: seconds between a replica's tries for the writer lock
    startup_sync: float = 10.0  # seconds an authority waits for peers before its first seal
    http: HttpLimits = field(default_factory=HttpLimits)
    #: TEST ONLY: seconds added to the wall clock this node reads (to run a skewed node)
    clock_offset: float = 0.0
    public_url: str | None = None  # the base URL printed in certificates' QR codes
    #: the network's diagnostic indicator list (JSON); None: the list shipped with kpledger
    indicators: Path | None = None

    @property
    def public_base(self) -> str:
        """The base URL of certificate codes: ``node.public_url``, else ``node.url``."""
        return (self.public_url or self.url).rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    # ------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        path = path.resolve()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such configuration file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        return _Reader(path, data).config()

    # ------------------------------------------------------------ secrets
    def secret(self, name: str, env: str) -> str | None:
        """A secret from ``env``, the file ``env_FILE`` names, or the secrets file."""
        value = os.environ.get(env)
        if value:
            return value
        named = os.environ.get(env + "_FILE")
        if named:
            try:
                text = Path(named).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{env}_FILE: cannot read {named}: {exc}") from exc
            if not text:
                raise ConfigError(f"{env}_FILE: {named} is empty")
            return text
        if self.secrets is None:
            return None
        table = read_secrets(self.secrets)
        section = table.get(self.code, {})
        found = section.get(name) if isinstance(section, dict) else None
        if found is not None and not isinstance(found, str):
            raise ConfigError(f"{self.secrets}: [{self.code}].{name} must be a string")
        return found

    def store_url(self) -> str:
        """``database_url``, with the PostgreSQL password from the secrets if it has none.

        The password comes from ``KPL_DATABASE_PASSWORD``, the file
        ``KPL_DATABASE_PASSWORD_FILE`` names, or ``database_password`` in the
        secrets file; without one, libpq's own ``PGPASSWORD`` / ``.pgpass`` apply.
        """
        if self.is_sqlite:
            return self.database_url
        url = make_url(self.database_url)
        if url.password:
            return self.database_url
        password = self.secret("database_password", "KPL_DATABASE_PASSWORD")
        if not password:
            return self.database_url
        return url.set(password=password).render_as_string(hide_password=False)

    def token_role(self, token: str) -> TokenConfig | None:
        digest = hash_token(token)
        for t in self.tokens:
            if t.sha256 == digest:
                return t
        return None


#: the first line of every node.toml this project writes
CONFIG_HEADER = "# kpledger node configuration; every key is described in the README."


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write a {type(value).__name__} into a node configuration")


def dump_config(doc: dict[str, Any], header: str = CONFIG_HEADER) -> str:
    """TOML for a configuration document: tables of scalars, inline arrays, arrays of tables.

    The one writer of ``node.toml``: ``kpl network init``, ``kpl network join``,
    ``kpl network add-peer``, the benchmarks and the tests all write through it.
    """
    lines = [header] if header else []
    tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
    arrays = {
        k: v
        for k, v in doc.items()
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
    }
    for key, value in doc.items():
        if key not in tables and key not in arrays:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables.items():
        lines += ["", f"[{name}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    for name, items in arrays.items():
        for item in items:
            lines += ["", f"[[{name}]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def write_config(path: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` as a node configuration at ``path`` (see ``dump_config``)."""
    path.write_text(dump_config(doc), encoding="utf-8")
    return path


def edit_config(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Read ``path``, let ``change`` edit the document in place, write it back."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    change(doc)
    write_config(path, doc)


def read_secrets(path: Path) -> dict[str, Any]:
    """Read an owner-only secrets file; refuse one that group or others can read."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: secrets file does not exist") from exc
    if os.name == "posix" and st.st_mode & 0o077:
        raise ConfigError(
            f"{path}: permissions {st.st_mode & 0o777:04o} are too open for a "
            f"secrets file; run chmod 600 {path}"
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read secrets: {exc}") from exc


class _Reader:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.base = path.parent
        self.data = data

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {message}", field=key)

    def table(self, name: str, *, required: bool = True) -> dict[str, Any]:
        value = self.data.get(name)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, "expected a table")
        return value

    def get(
        self, table: dict[str, Any], section: str, key: str, kind: type, default: Any = ...
    ) -> Any:
        if key not in table:
            if default is ...:
                raise self.fail(f"{section}.{key}", "is required")
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"{section}.{key}", f"expected {kind.__name__}")
        return value

    def number(
        self, table: dict[str, Any], section: str, key: str, default: float, low: float, high: float
    ) -> float:
        value: float = self.get(table, section, key, float, default)
        if not low <= value <= high:
            raise self.fail(f"{section}.{key}", f"must be in {low}..{high}")
        return value

    def integer(
        self, table: dict[str, Any], section: str, key: str, default: int, low: int, high: int
    ) -> int:
        value: int = self.get(table, section, key, int, default)
        if not low <= value <= high:
            raise self.fail(f"{section}.{key}", f"must be in {low}..{high}")
        return value

    def file(self, value: str) -> Path:
        return (self.base / value).resolve()

    def known(self, table: dict[str, Any], section: str, keys: set[str]) -> None:
        extra = sorted(set(table) - keys)
        if extra:
            raise self.fail(section, f"unknown key(s) {extra}")

    def http(self) -> HttpLimits:
        t = self.table("http", required=False)
        self.known(t, "http", {f.name for f in fields(HttpLimits)})
        d = HttpLimits()
        return HttpLimits(
            header_timeout=self.number(t, "http", "header_timeout", d.header_timeout, 0.1, 600),
            body_timeout=self.number(t, "http", "body_timeout", d.body_timeout, 0.1, 3600),
            keep_alive=self.number(t, "http", "keep_alive", d.keep_alive, 0.1, 600),
            max_connections=self.integer(
                t, "http", "max_connections", d.max_connections, 1, 1_000_000
            ),
            verify_max_bytes=self.integer(
                t, "http", "verify_max_bytes", d.verify_max_bytes, 1024, 64 * 1024 * 1024
            ),
            verify_concurrency=self.integer(
                t, "http", "verify_concurrency", d.verify_concurrency, 1, 64
            ),
        )

    def peers(self, gossip: dict[str, Any]) -> list[PeerConfig]:
        peers = []
        for i, p in enumerate(self.get(gossip, "gossip", "peers", list, [])):
            if not isinstance(p, dict):
                raise self.fail(f"gossip.peers[{i}]", "expected {code, url}")
            self.known(p, f"gossip.peers[{i}]", {"code", "url"})
            peer = PeerConfig(
                self.get(p, f"gossip.peers[{i}]", "code", str),
                self.get(p, f"gossip.peers[{i}]", "url", str),
            )
            if not peer.url.startswith(("http://", "https://")):
                raise self.fail(f"gossip.peers[{i}].url", "expected an http(s) URL")
            peers.append(peer)
        return peers

    def tokens(self) -> list[TokenConfig]:
        tokens = []
        raw_tokens = self.data.get("tokens", [])
        if not isinstance(raw_tokens, list):
            raise self.fail("tokens", "expected an array of tables [[tokens]]")
        for i, t in enumerate(raw_tokens):
            where = f"tokens[{i}]"
            if not isinstance(t, dict):
                raise self.fail(where, "expected a table")
            self.known(t, where, {"role", "name", "sha256", "party"})
            role = self.get(t, where, "role", str)
            if role not in ROLES:
                raise self.fail(f"{where}.role", f"must be one of {sorted(ROLES)}")
            digest = self.get(t, where, "sha256", str)
            if _HEX64.match(digest) is None:
                raise self.fail(f"{where}.sha256", "expected the token's SHA-256 in lower hex")
            party = t.get("party")
            if role == "party" and not isinstance(party, str):
                raise self.fail(f"{where}.party", "a party token names its party id")
            tokens.append(TokenConfig(role, self.get(t, where, "name", str), digest, party))
        return tokens

    def tls(self) -> TlsConfig | None:
        tls_table = self.table("tls", required=False)
        if not tls_table:
            return None
        self.known(tls_table, "tls", {"cert", "key", "ca", "api_listen", "api_cert", "api_key"})
        ca = self.get(tls_table, "tls", "ca", str, None)
        api_host = api_port = None
        api_listen = self.get(tls_table, "tls", "api_listen", str, None)
        if api_listen is not None:
            am = _HOSTPORT.match(api_listen)
            if am is None or not 0 < int(am["port"]) < 65536:
                raise self.fail("tls.api_listen", "expected HOST:PORT, e.g. 0.0.0.0:8443")
            api_host, api_port = am["host"].strip("[]"), int(am["port"])
        api_cert = self.get(tls_table, "tls", "api_cert", str, None)
        api_key = self.get(tls_table, "tls", "api_key", str, None)
        if (api_cert is None) != (api_key is None):
            raise self.fail("tls.api_cert", "api_cert and api_key go together")
        if api_cert is not None and api_listen is None:
            raise self.fail("tls.api_cert", "a separate API certificate needs tls.api_listen")
        return TlsConfig(
            self.file(self.get(tls_table, "tls", "cert", str)),
            self.file(self.get(tls_table, "tls", "key", str)),
            self.file(ca) if ca is not None else None,
            api_host,
            api_port,
            self.file(api_cert) if api_cert is not None else None,
            self.file(api_key) if api_key is not None else None,
        )

    def database_url(self, node: dict[str, Any], data_dir: Path) -> str:
        database_url: str = self.get(node, "node", "database_url", str, "")
        if not database_url:
            return f"sqlite:///{data_dir / 'node.db'}"
        if not database_url.startswith(("sqlite:///", "postgresql")):
            raise self.fail(
                "node.database_url", "expected sqlite:///FILE or postgresql+psycopg://..."
            )
        return database_url

    def public_url(self, node: dict[str, Any]) -> str | None:
        """``node.public_url``: the base URL printed in certificates' QR codes, if set."""
        public_url = self.get(node, "node", "public_url", str, "") or None
        if public_url is None:
            return None
        try:
            return check_base_url(public_url)
        except SchemaError as exc:
            raise self.fail("node.public_url", exc.message) from exc

    def config(self) -> NodeConfig:
        self.known(self.data, "(top level)", {"node", "blocks", "gossip", "tokens", "tls", "http"})
        node = self.table("node")
        self.known(
            node,
            "node",
            {
                "code",
                "listen",
                "url",
                "public_url",
                "data_dir",
                "database_url",
                "registry",
                "key_file",
                "secrets",
                "writer_retry",
                "startup_sync",
                "clock_offset",
                "indicators",
            },
        )
        code = self.get(node, "node", "code", str)
        if CODE.match(code) is None:
            raise self.fail("node.code", "expected a participant code like BW")
        listen = self.get(node, "node", "listen", str)
        m = _HOSTPORT.match(listen)
        if m is None or not 0 < int(m["port"]) < 65536:
            raise self.fail("node.listen", "expected HOST:PORT, e.g. 127.0.0.1:8101")
        url = self.get(node, "node", "url", str)
        if not url.startswith(("http://", "https://")):
            raise self.fail("node.url", "expected an http:// or https:// URL")
        public_url = self.public_url(node)
        data_dir = self.file(self.get(node, "node", "data_dir", str, "."))
        database_url = self.database_url(node, data_dir)
        key_file = node.get("key_file")
        secrets = node.get("secrets")
        indicators = node.get("indicators")
        blocks = self.table("blocks", required=False)
        self.known(blocks, "blocks", {"interval", "max_records", "heartbeat"})
        gossip = self.table("gossip", required=False)
        self.known(
            gossip,
            "gossip",
            {"peers", "fanout", "push", "interval", "batch", "timeout", "max_buffered_blocks"},
        )
        peers = self.peers(gossip)
        tokens = self.tokens()
        tls = self.tls()
        return NodeConfig(
            http=self.http(),
            path=self.path,
            code=code,
            host=m["host"].strip("[]"),
            port=int(m["port"]),
            url=url.rstrip("/"),
            data_dir=data_dir,
            database_url=database_url,
            registry=self.file(self.get(node, "node", "registry", str)),
            key_file=self.file(key_file) if isinstance(key_file, str) else None,
            secrets=self.file(secrets) if isinstance(secrets, str) else None,
            block_interval=self.number(blocks, "blocks", "interval", 1.0, 0.01, 3600),
            max_block_records=self.integer(blocks, "blocks", "max_records", 1000, 1, 100_000),
            heartbeat=self.number(blocks, "blocks", "heartbeat", 5.0, 0.1, 86_400),
            peers=tuple(peers),
            fanout=self.integer(gossip, "gossip", "fanout", 3, 1, 64),
            push_peers=self.integer(gossip, "gossip", "push", 16, 1, 1024),
            gossip_interval=self.number(gossip, "gossip", "interval", 1.0, 0.01, 3600),
            pull_batch=self.integer(gossip, "gossip", "batch", 256, 1, 10_000),
            peer_timeout=self.number(gossip, "gossip", "timeout", 5.0, 0.1, 600),
            max_buffered_blocks=self.integer(
                gossip, "gossip", "max_buffered_blocks", 4096, 1, 1_000_000
            ),
            tokens=tuple(tokens),
            tls=tls,
            writer_retry=self.number(node, "node", "writer_retry", 2.0, 0.1, 600),
            startup_sync=self.number(node, "node", "startup_sync", 10.0, 0, 3600),
            clock_offset=self.number(node, "node", "clock_offset", 0.0, -1e9, 1e9),
            public_url=public_url,
            indicators=self.file(indicators) if isinstance(indicators, str) else None,
        )
