"""TLS: a network from ``init_network(tls=True)`` on loopback, mutual TLS between nodes.

Five real node processes (BW, AE, EU, IN and the WDC auditor), each with an
API listener of its own (``tls.api_listen``). The story of ``kpl ops story``
(the one ``docker/README.md`` runs) goes through the API listeners, and every
node ends with the same chains, which it could only have got over mutual
TLS. A client without a client certificate, or with one from another
network's CA, is refused by the nodes' own listener; peers cannot gossip on
the API listener; and the Dockerfile's healthcheck passes against a node.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from kpledger.cli.ops import run_network_story
from kpledger.ledger.blocks import Header
from kpledger.node.local import free_base_port
from kpledger.node.network import init_network
from kpledger.node.tls import issue_node_certificate, load_ca

pytestmark = pytest.mark.timeout(180)

CODES = ("BW", "AE", "EU", "IN")
DOCKERFILE = Path(__file__).resolve().parents[2] / "docker" / "Dockerfile"


def _context(folder: Path, *, client_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(folder / "tls" / "ca.pem"))
    if client_cert:
        ctx.load_cert_chain(str(folder / "tls" / "node.pem"), str(folder / "tls" / "node-key.pem"))
    return ctx


@pytest.fixture(scope="module")
def tls_net(deploy: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("tls") / "net"
    base = free_base_port(5)
    api = free_base_port(5, start=base + 20)
    layout = init_network(
        root,
        CODES,
        ("WDC",),
        base_port=base,
        api_base_port=api,
        tls=True,
        block_interval=0.1,
        heartbeat=1.0,
        gossip_interval=0.2,
    )
    runs = {
        code: deploy.NodeRun(config, layout.urls[code], root / f"{code}.log", {}).start()
        for code, config in layout.configs.items()
    }
    try:
        for code, run in runs.items():
            run.wait_ready(verify=_context(root / code))
        yield SimpleNamespace(root=root, layout=layout, runs=runs, api=api)
    finally:
        for run in runs.values():
            run.terminate()
        for run in runs.values():
            run.stop()


def test_story_over_tls_and_nodes_converge(deploy: Any, tls_net: SimpleNamespace) -> None:
    lines: list[str] = []
    final, history = run_network_story(tls_net.root, "127.0.0.1", lines.append)
    assert final == "IN-CUT-2"
    assert len(lines) == 16
    # the auditor's node holds the lineage back to both mines (its shape is tests/api's)
    text = json.dumps(history)
    for ancestor in ("BW-JW-1", "BW-OR-1", "EU-AW-1", "IN-CUT"):
        assert f'"{ancestor}"' in text

    def heads(code: str) -> dict[str, Any]:
        with httpx.Client(verify=_context(tls_net.root / code), timeout=5) as http:
            answer: dict[str, Any] = http.get(tls_net.layout.urls[code] + "/v1/heads").json()
            return {c: (h["height"], h["hash"]) for c, h in answer["heads"].items()}

    # every chain that took part in the story, as BW holds it now, is on every node
    # with the same header at that height (heartbeats keep sealing meanwhile, so the
    # heads themselves are never all equal at one instant on a loaded machine)
    reference = deploy.wait_for("BW to hold every chain", lambda: _all_chains(heads("BW")), 30)
    deploy.wait_for(
        "every node to hold every chain as far as BW did",
        lambda: all(
            heads(code).get(c, (0, ""))[0] >= reference[c][0]
            for code in tls_net.layout.urls
            for c in CODES
        ),
        30,
    )
    secrets = deploy.secrets_of(tls_net.root)
    for code in tls_net.layout.urls:
        asker = "WDC" if code != "WDC" else "BW"  # a peer's token: blocks are for peers
        token = {"Authorization": f"Bearer {secrets[asker]['peer_token']}"}
        with httpx.Client(verify=_context(tls_net.root / code), timeout=5, headers=token) as http:
            for c in CODES:
                height, digest = reference[c]
                answer = http.get(
                    f"{tls_net.layout.urls[code]}/v1/chains/{c}/blocks",
                    params={"from": height, "limit": 1},
                )
                header = Header.from_json(answer.json()["blocks"][0]["header"])
                assert header.hash.hex() == digest, (code, c, height)
    for code in tls_net.layout.urls:
        with httpx.Client(verify=_context(tls_net.root / code), timeout=5) as http:
            metrics = http.get(tls_net.layout.urls[code] + "/metrics").text
        reachable = re.search(r"^kpl_peers_reachable (\S+)$", metrics, re.M)
        assert reachable is not None
        assert float(reachable.group(1)) >= 1, f"{code} reached no peer over mutual TLS"


def _all_chains(held: dict[str, Any]) -> dict[str, Any] | None:
    return held if set(CODES) <= set(held) else None


def test_clients_without_a_valid_certificate_are_refused(tls_net: SimpleNamespace) -> None:
    url = tls_net.layout.urls["BW"] + "/healthz"
    folder = tls_net.root / "BW"
    # with the node's certificate: served
    with httpx.Client(verify=_context(folder), timeout=5) as http:
        assert http.get(url).json()["role"] == "writer"
    # no client certificate: the handshake fails
    with (
        httpx.Client(verify=_context(folder, client_cert=False), timeout=5) as http,
        pytest.raises(httpx.TransportError),
    ):
        http.get(url)
    # a certificate from another network's CA: refused too
    other = init_network(tls_net.root.parent / "other", ["BW"], (), tls=True).root
    ctx = ssl.create_default_context(cafile=str(folder / "tls" / "ca.pem"))
    ctx.load_cert_chain(
        str(other / "BW" / "tls" / "node.pem"), str(other / "BW" / "tls" / "node-key.pem")
    )
    with httpx.Client(verify=ctx, timeout=5) as http, pytest.raises(httpx.TransportError):
        http.get(url)
    # and the node is not someone a client of the other network trusts
    with (
        httpx.Client(verify=_context(other / "BW"), timeout=5) as http,
        pytest.raises(httpx.TransportError),
    ):
        http.get(url)
    # plain HTTP to a TLS port gets nowhere
    with httpx.Client(timeout=5) as http, pytest.raises(httpx.TransportError):
        http.get(url.replace("https://", "http://"))


def test_api_listener_needs_no_client_certificate_but_takes_no_gossip(
    tls_net: SimpleNamespace,
) -> None:
    api = f"https://127.0.0.1:{tls_net.api + 1}"  # BW, the first participant
    with httpx.Client(verify=_context(tls_net.root / "BW", client_cert=False), timeout=5) as http:
        health = http.get(api + "/healthz").json()
        assert health["node"] == "BW"
        assert health["role"] == "writer"
        assert http.get(api + "/v1/heads").status_code == 200
        refused = http.post(api + "/v1/gossip", json={})
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("peer-port")


def test_dockerfile_healthcheck_against_a_node(deploy: Any, tls_net: SimpleNamespace) -> None:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    line = next(x for x in text.splitlines() if x.startswith("HEALTHCHECK"))
    command = json.loads(line.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]

    def check(code: str) -> int:
        env = {"PATH": os.environ["PATH"], "KPL_CONFIG": str(tls_net.layout.configs[code])}
        run = subprocess.run(
            [sys.executable, "-c", command[2]],
            check=False,
            capture_output=True,
            timeout=30,
            env=env,
        )
        return run.returncode

    assert check("BW") == 0  # an authority over mutual TLS
    assert check("WDC") == 0  # the auditor
    config = tls_net.layout.configs["IN"]
    stopped = tls_net.runs["IN"]
    stopped.stop()
    try:
        assert check("IN") != 0
    finally:
        tls_net.runs["IN"] = deploy.NodeRun(
            config, tls_net.layout.urls["IN"], stopped.log, {}
        ).start()


def test_api_listener_with_its_own_certificate(deploy: Any, tls_net: SimpleNamespace) -> None:
    """``tls.api_cert``: the API listener presents another certificate (say, a public CA's)."""
    public = init_network(tls_net.root.parent / "public", ["BW"], (), tls=True).root
    key, ca = load_ca(public / "tls")
    folder = tls_net.root / "WDC"
    issue_node_certificate(key, ca, "wdc-api", ["127.0.0.1"], folder / "api")
    config = tls_net.layout.configs["WDC"]
    config.write_text(
        config.read_text().replace(
            "[tls]\n", '[tls]\napi_cert = "api/node.pem"\napi_key = "api/node-key.pem"\n', 1
        )
    )
    run = tls_net.runs["WDC"]
    run.stop()
    tls_net.runs["WDC"] = run = deploy.NodeRun(config, run.url, run.log, {}).start()
    run.wait_ready(verify=_context(folder))  # the node's own listener: the network's CA
    api = f"https://127.0.0.1:{tls_net.api + 5}"  # WDC, the fifth
    public_ctx = ssl.create_default_context(cafile=str(public / "tls" / "ca.pem"))
    deploy.wait_for(
        "the API listener",
        lambda: httpx.get(api + "/healthz", verify=public_ctx).json()["node"] == "WDC",
        10,
    )
    with pytest.raises(httpx.TransportError):  # not the network CA's certificate there
        httpx.get(api + "/healthz", verify=_context(folder, client_cert=False))
