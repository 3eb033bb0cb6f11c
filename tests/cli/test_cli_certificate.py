"""``kpl verify-certificate``: a buyer checks a printed certificate's QR code against the
registry it holds and a node, never trusting the node that printed it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kpledger.cli.certificate import verify_certificate_command
from kpledger.cli.example import run_example
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.certcode import CertificateCode
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.records import Kind, Record
from kpledger.ledger.store import Store
from tests.cli.test_cli_verify import _serve

NUMBER = "EU-2026-0001"


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, CertificateCode, Path]]:
    folder = tmp_path_factory.mktemp("cert")
    result = run_example(f"sqlite:///{folder / 'example.db'}")
    store = result.store
    cert = store.certificate(NUMBER)
    assert cert is not None
    registry = folder / "genesis.json"
    registry.write_bytes(store.registry.to_bytes())
    code = CertificateCode(
        "https://printer.example", store.registry.network_id, NUMBER, cert.issue_ref.hash
    )
    url, server, thread, sock = _serve(store, folder)
    try:
        yield url, code, registry
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


def test_an_honest_code_checks_out_and_names_its_anchor(
    honest: tuple[str, CertificateCode, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, code, registry = honest
    assert verify_certificate_command(code.url(), registry, [url]) == 0
    shown = capsys.readouterr().out
    assert f"verified: certificate {NUMBER}" in shown
    assert f"anchor trusted: the genesis registry {registry}" in shown
    assert "the code's own URL (https://printer.example) was not" in shown
    assert f"node {url}: EU/" in shown


def test_a_forgers_code_fails_on_an_honest_node(
    honest: tuple[str, CertificateCode, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The forger's node printed a certificate record of its own: same number, another
    record hash. The honest node proves the network's record, which differs."""
    url, code, registry = honest
    forged = CertificateCode("https://evil.example", code.network, NUMBER, bytes(32))
    assert verify_certificate_command(forged.url(), registry, [url]) == 1
    shown = capsys.readouterr().err
    assert "NOT verified" in shown
    assert "was not printed from the network's record" in shown


def test_a_code_of_another_network_fails_offline(
    honest: tuple[str, CertificateCode, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, code, registry = honest
    other = CertificateCode(code.base, "ab" * 32, NUMBER, code.record)
    assert verify_certificate_command(other.url(), registry, [url]) == 1
    assert "not a certificate of the network you trust" in capsys.readouterr().err


def test_unusable_inputs(
    honest: tuple[str, CertificateCode, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, code, registry = honest
    assert verify_certificate_command("https://x/#/parcel/1", registry, [url]) == 2
    assert "not a certificate code" in capsys.readouterr().err
    assert verify_certificate_command(code.url(), tmp_path / "none.json", [url]) == 2
    # an unreachable node is named as failing, not trusted
    assert verify_certificate_command(code.url(), registry, ["http://127.0.0.1:9"]) == 1
    assert "cannot be reached" in capsys.readouterr().err


def test_a_code_checks_after_the_governance_replaced_the_issuers_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BW's key is replaced by the KP (key.replace, two governance signatures); the
    certificate BW then issues is in blocks signed by the new key. The node's answer
    proves the replacement, so the buyer's registry-only check passes and says so."""
    sc = Scenario(Network.create(("BW", "EU"), ("WDC",)))
    store = Store.open(f"sqlite:///{tmp_path / 'replaced.db'}", sc.net.registry)

    def seal(chain: str, *records: Record) -> None:
        store.writer.apply(sc.seal(chain, *records))

    seal("BW", sc.party("BW", "BW-MINE", "miner"), sc.party("BW", "BW-EXP", "exporter"))
    seal("EU", sc.party("EU", "EU-IMP", "importer"))
    seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000))
    bw = sc.ledger.state.head("BW")
    assert bw is not None
    fresh = Ed25519Signer.from_seed(b"bw-after-the-theft".ljust(32, b"."))
    body = {
        "code": "BW",
        "key": fresh.public.hex(),
        "from_height": bw.height + 1,
        "reason": "theft",
    }
    seal("KP", sc.governance(Kind.KEY_REPLACE, body))
    sc.net.signers["BW"] = fresh
    seal("BW", sc.transfer("BW", "BW-P1", "BW-EXP"))
    seal("BW", sc.issue("BW", "BW-2026-1", "EU", "BW-EXP", ["BW-P1"]))
    cert = store.certificate("BW-2026-1")
    assert cert is not None
    registry = tmp_path / "genesis.json"
    registry.write_bytes(store.registry.to_bytes())
    code = CertificateCode(
        "https://printer.example", store.registry.network_id, "BW-2026-1", cert.issue_ref.hash
    )
    url, server, thread, sock = _serve(store, tmp_path)
    try:
        assert verify_certificate_command(code.url(), registry, [url]) == 0
        shown = capsys.readouterr().out
        assert f"signed by key {fresh.public.key_id[:16]}, which the chain's own key" in shown
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        store.close()


def test_several_nodes_are_compared_and_one_that_lacks_the_confirmation_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two nodes prove the same issue record, but ``stale`` lacks EU's confirmation:
    each alone checks out; asked together, the statuses differ (exit 1) and the node
    with the shorter log of EU is named."""
    sc = Scenario(Network.create(("BW", "EU"), ("WDC",)))
    full = Store.open(f"sqlite:///{tmp_path / 'full.db'}", sc.net.registry)
    stale = Store.open(f"sqlite:///{tmp_path / 'stale.db'}", sc.net.registry)

    def seal(chain: str, *records: Record, to: tuple[Store, ...] = (full, stale)) -> None:
        block = sc.seal(chain, *records)
        for store in to:
            store.writer.apply(block)

    seal("BW", sc.party("BW", "BW-MINE", "miner"), sc.party("BW", "BW-EXP", "exporter"))
    seal("EU", sc.party("EU", "EU-IMP", "importer"))
    seal("BW", sc.register("BW", "BW-P1", "BW-MINE", 100_000, 13_400_000))
    seal("BW", sc.transfer("BW", "BW-P1", "BW-EXP"))
    seal("BW", sc.issue("BW", "BW-2026-1", "EU", "BW-EXP", ["BW-P1"]))
    seal("EU", sc.confirm("EU", "BW-2026-1", "EU-IMP"), to=(full,))
    cert = full.certificate("BW-2026-1")
    assert cert is not None
    registry = tmp_path / "genesis.json"
    registry.write_bytes(full.registry.to_bytes())
    code = CertificateCode(
        "https://printer.example", full.registry.network_id, "BW-2026-1", cert.issue_ref.hash
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    url_full, server_a, thread_a, sock_a = _serve(full, tmp_path / "a")
    url_stale, server_b, thread_b, sock_b = _serve(stale, tmp_path / "b")
    try:
        assert verify_certificate_command(code.url(), registry, [url_full]) == 0
        assert "status confirmed" in capsys.readouterr().out
        assert verify_certificate_command(code.url(), registry, [url_stale]) == 0
        # without the confirmation the stale node sees an unclosed certificate past expiry
        assert "status expired" in capsys.readouterr().out
        assert verify_certificate_command(code.url(), registry, [url_full, url_stale]) == 1
        shown = capsys.readouterr().err
        assert "NOT verified: certificate BW-2026-1" in shown
        assert (
            f"the nodes report different statuses ({url_full}: confirmed, {url_stale}: expired)"
            in shown
        )
        assert (
            f"node {url_stale} holds a shorter log of EU (1 records) than node {url_full}" in shown
        )
        assert f"anchor trusted: the genesis registry {registry}" in shown
    finally:
        for server, thread, sock in ((server_a, thread_a, sock_a), (server_b, thread_b, sock_b)):
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
        full.close()
        stale.close()
