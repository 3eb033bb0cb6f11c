"""docker/: what can be checked without a Docker engine.

The command that ``docker/compose.yaml`` documents for writing its files is
run as written (in a temporary folder); then: the compose file parses; every
config and secret file it mounts exists (secrets owner-only); each node's
``node.toml`` loads with ``NodeConfig.load`` and agrees with the compose file
(ports published, its URL and its peers' URLs by service name, its own
PostgreSQL service, every file it names mounted where it looks for it, its
secrets where its ``*_FILE`` variables point); the secrets fit the configs
(peer tokens, key passphrases, TLS names); and the Dockerfile's entrypoint
command and healthcheck are what the compose file and the node expect.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import make_url

from kpledger.keys import load_key
from kpledger.ledger.registry import Registry
from kpledger.node.config import NodeConfig, hash_token

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
NODES = {"bw": "BW", "eu": "EU", "in": "IN", "ae": "AE", "wdc": "WDC"}
AUTHORITIES = {"BW", "EU", "IN", "AE"}
ETC = "/etc/kpl"

pytestmark = pytest.mark.timeout(120)


def documented_command() -> list[str]:
    """The ``kpl network init`` line of compose.yaml's header, as argv."""
    for line in COMPOSE_FILE.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if text.startswith("kpl network init"):
            return shlex.split(text)
    raise AssertionError("compose.yaml does not document the kpl network init command")


def kpl(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "kpledger.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder standing for docker/: the documented command run in it."""
    root = tmp_path_factory.mktemp("docker")
    argv = documented_command()
    assert argv[:3] == ["kpl", "network", "init"]
    assert "--docker" in argv
    run = kpl(*argv[1:], cwd=root)
    assert run.returncode == 0, run.stdout + run.stderr
    return root


def host_file(project: Path, entry: dict[str, Any]) -> Path:
    return (project / entry["file"]).resolve()


def mounts(compose: dict[str, Any], service: dict[str, Any], project: Path) -> dict[str, Path]:
    """Container path -> host file, for every config and secret the service mounts."""
    out: dict[str, Path] = {}
    for kind, default_dir in (("configs", "/"), ("secrets", "/run/secrets/")):
        for item in service.get(kind, []):
            source = item if isinstance(item, str) else item["source"]
            target = item.get("target", source) if isinstance(item, dict) else source
            if not target.startswith("/"):
                target = default_dir + target
            assert source in compose[kind], f"{kind} {source} is not defined"
            out[target] = host_file(project, compose[kind][source])
    return out


def node_config(project: Path, code: str) -> NodeConfig:
    return NodeConfig.load(project / "network" / code / "node.toml")


def test_compose_parses_and_holds_the_network(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == set(NODES) | {f"db-{s}" for s in NODES}
    for name in NODES:
        node = services[name]
        assert node["image"] == "kpledger:latest"
        assert (
            COMPOSE_FILE.parent / node["build"]["context"] / node["build"]["dockerfile"]
        ).is_file()
        assert node["depends_on"][f"db-{name}"]["condition"] == "service_healthy"
        assert node["read_only"] is True
        assert re.fullmatch(r"\$\{KPL_UID:-\d+\}:\$\{KPL_GID:-\d+\}", node["user"])
        db = services[f"db-{name}"]
        assert db["image"].startswith("postgres:16")
        assert "ports" not in db  # databases are not published
        assert compose["networks"][f"{name}-db"]["internal"] is True


def test_every_mounted_file_exists(compose: dict[str, Any], project: Path) -> None:
    for kind in ("configs", "secrets"):
        for name, entry in compose[kind].items():
            path = host_file(project, entry)
            assert path.is_file(), f"{kind}.{name}: {entry['file']} was not written"
            if kind == "secrets":
                assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
    used = {
        (item if isinstance(item, str) else item["source"])
        for service in compose["services"].values()
        for kind in ("configs", "secrets")
        for item in service.get(kind, [])
    }
    assert used == set(compose["configs"]) | set(compose["secrets"]), "unused definitions"
    env = (project / "network" / "compose.env").read_text()
    assert f"KPL_UID={os.getuid()}" in env
    assert f"KPL_GID={os.getgid()}" in env


def test_node_configs_agree_with_compose(compose: dict[str, Any], project: Path) -> None:
    services = compose["services"]
    configs = {name: node_config(project, code) for name, code in NODES.items()}
    urls = {}
    for name, code in NODES.items():
        config, service = configs[name], services[name]
        assert config.code == code
        assert config.host == "0.0.0.0"
        assert config.tls is not None
        assert config.tls.api_port is not None
        for port in (config.port, config.tls.api_port):
            assert f"{port}:{port}" in service["ports"], f"{name}: port {port} not published"
        assert config.url == f"https://{name}:{config.port}"
        urls[code] = config.url
    for name, code in NODES.items():
        config, service = configs[name], services[name]
        assert {p.code: p.url for p in config.peers} == {c: u for c, u in urls.items() if c != code}

        # its own PostgreSQL, on a network the two share, with the same user and database
        url = make_url(config.database_url)
        assert url.drivername == "postgresql+psycopg"
        assert url.host == f"db-{name}"
        assert url.password is None  # from the secret, never in the file
        db = services[f"db-{name}"]
        assert set(service["networks"]) & set(db["networks"])
        assert url.username == db["environment"]["POSTGRES_USER"]
        assert url.database == db["environment"]["POSTGRES_DB"]
        env = service["environment"]
        assert env["KPL_DATABASE_PASSWORD_FILE"] == db["environment"]["POSTGRES_PASSWORD_FILE"]

        # every file the node reads is mounted where it looks for it
        where = mounts(compose, service, project)
        assert where[f"{ETC}/node.toml"] == config.path
        needed = [config.registry]
        if config.key_file is not None:
            needed.append(config.key_file)
        assert config.tls is not None
        assert config.tls.ca is not None
        needed += [config.tls.cert, config.tls.key, config.tls.ca]
        for path in needed:
            inside = f"{ETC}/{path.relative_to(config.path.parent)}"
            assert where.get(inside) == path, f"{name}: {inside} is not mounted from {path}"
        assert (config.key_file is not None) == (code in AUTHORITIES)

        # the secrets named by *_FILE variables are mounted there
        for var, value in env.items():
            if var.endswith("_FILE"):
                assert value in where, f"{name}: {var}={value} is not a mounted secret"
        wanted = {"KPL_PEER_TOKEN_FILE", "KPL_DATABASE_PASSWORD_FILE"}
        if code in AUTHORITIES:
            wanted.add("KPL_PASSPHRASE_FILE")
        assert set(env) == wanted


def test_secrets_fit_the_configs(compose: dict[str, Any], project: Path) -> None:
    services = compose["services"]
    root = project / "network"
    registry = Registry.parse((root / "genesis.json").read_bytes())
    ca = x509.load_pem_x509_certificate((root / "tls" / "ca.pem").read_bytes())
    for name, code in NODES.items():
        config = node_config(project, code)
        where = mounts(compose, services[name], project)
        env = services[name]["environment"]
        secret = {var: where[path].read_text().strip() for var, path in env.items()}
        assert config.registry.read_bytes() == registry.to_bytes()
        # the peer token this node sends is the one every other node accepts from it
        digest = hash_token(secret["KPL_PEER_TOKEN_FILE"])
        for other, other_code in NODES.items():
            if other != name:
                peers = {
                    t.name: t.sha256
                    for t in node_config(project, other_code).tokens
                    if t.role == "peer"
                }
                assert peers[code] == digest, f"{other} does not accept {code}'s peer token"
        # the passphrase opens the key the registry names for this participant
        if code in AUTHORITIES:
            assert config.key_file is not None
            signer = load_key(config.key_file, secret["KPL_PASSPHRASE_FILE"].encode())
            participant = registry.participant(code)
            assert participant is not None
            assert signer.public.raw == participant.key.raw
        # the certificate names the service and is signed by the network CA
        assert config.tls is not None
        cert = x509.load_pem_x509_certificate(config.tls.cert.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert name in names.get_values_for_type(x509.DNSName)
        assert cert.issuer == ca.subject
        public = ca.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        cert.verify_directly_issued_by(ca)


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of docker/Dockerfile, continuation lines joined."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


ENTRYPOINT = next(a for w, a in dockerfile() if w == "ENTRYPOINT")


def test_dockerfile(compose: dict[str, Any]) -> None:
    steps = dockerfile()
    froms = [args for word, args in steps if word == "FROM"]
    assert len(froms) == 2, "a builder stage and a runtime stage"
    assert froms[0] == "python:3.11-slim AS builder"
    assert froms[1].split()[0] == "python:3.11-slim"
    runtime = steps[[w for w, _ in steps].index("FROM", 1) :]
    users = [args for word, args in runtime if word == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert any(w == "COPY" and a.startswith("--from=builder") for w, a in runtime)
    for word, args in steps:
        if word == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: not in the build context"
    entry = json.loads(ENTRYPOINT)
    assert entry == ["kpl", "node", "run", "--config", f"{ETC}/node.toml"]
    for name in NODES:
        targets = {c["target"] for c in compose["services"][name]["configs"]}
        assert entry[-1] in targets
    env = next(a for w, a in runtime if w == "ENV")
    assert f"KPL_CONFIG={ETC}/node.toml" in env
    check = next(a for w, a in steps if w == "HEALTHCHECK")
    assert "/healthz" in check
    command = json.loads(check.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    compile(command[2], "HEALTHCHECK", "exec")  # valid Python (it is run in tests/deploy)
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    assert next(x for x in ignore if not x.startswith("#")) == "**"
    # every folder kpledger/ links to is in the build context and copied: a link
    # left dangling would leave its package out of the image's wheel
    copied = {args.split()[0] for word, args in steps if word == "COPY"}
    for link in (REPO / "kpledger").iterdir():
        if link.is_symlink():
            assert link.name in copied, f"the Dockerfile does not copy {link.name}/"
            assert f"!{link.name}/" in ignore, f"the build context leaves out {link.name}/"
    assert not any(line.startswith("!docker") for line in ignore), "keys must stay out"


def test_entrypoint_command_works_on_the_host(compose: dict[str, Any], project: Path) -> None:
    run = kpl("node", "run", "--help")
    assert run.returncode == 0, run.stderr
    assert "--config" in run.stdout
    assert "--log-level" in run.stdout
    # BW's container, minus the container: its config and its secrets through the
    # *_FILE variables get the node as far as its database, which only the
    # compose network has (db-bw): the key opened, the store cannot be reached
    service = compose["services"]["bw"]
    where = mounts(compose, service, project)
    env = {var: str(where[path]) for var, path in service["environment"].items()}
    config = node_config(project, "BW")
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "kpledger.cli.main",
            *json.loads(ENTRYPOINT)[1:-1],
            str(config.path),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **env},
    )
    assert started.returncode == 2, started.stdout + started.stderr
    assert "cannot open store" in started.stderr
    assert "db-bw" in started.stderr
    assert "passphrase" not in started.stderr
