"""``kpl governance``: the KP chair's workflow for chain ``KP``, with keys kept offline.

1. ``kpl governance propose admit|suspend|reinstate|key-replace ... -o P.json``
   writes the exact record (network, chain ``KP``, kind, id, time, body), unsigned;
2. ``kpl governance sign P.json --key gov-N.key`` adds one governance signature
   (over the record without ``sigs``, tag ``KPL-SIG-RECORD-V1``) on a machine
   that holds that key; run it once per signer, in any order, anywhere;
3. ``kpl governance submit P.json --node URL`` checks the threshold first
   ("signed by 1 of 2 required" otherwise), then posts the record; a node that
   is not the KP sealer names the sealer, and the command follows it there.

The file is plain JSON (any layout): it is parsed with the record schema, and
signatures cover the canonical bytes, so reformatting it breaks nothing.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from kpledger.keys import load_key, load_public_key, read_passphrase
from kpledger.ledger.canonical import Tag, canonical_bytes, load_json
from kpledger.ledger.crypto import PublicKey
from kpledger.ledger.errors import InvalidData, LedgerError, ThresholdError
from kpledger.ledger.records import GOVERNANCE_CHAIN, GOVERNANCE_KINDS, Kind, Record, make_record
from kpledger.ledger.registry import Registry

__all__ = [
    "app",
    "load_proposal",
    "load_registry",
    "sign_proposal",
    "sign_proposal_file",
    "submit_proposal",
    "write_proposal",
]

app = typer.Typer(
    help="KP governance: propose, sign offline, submit to chain KP", no_args_is_help=True
)
propose_app = typer.Typer(help="write a governance record to sign", no_args_is_help=True)
app.add_typer(propose_app, name="propose")

console = Console()
err = Console(stderr=True, soft_wrap=True)

PASS_ENV = "KPL_PASSPHRASE"  # noqa: S105 - the name of the variable, not a secret
_HEX_KEY = re.compile(r"\A[0-9a-f]{64}\Z")


def _fail(exc: LedgerError | str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code)


# ---------------------------------------------------------------- files


def load_registry(path: Path) -> Registry:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidData(f"{path}: cannot read the registry: {exc.strerror}") from exc
    try:
        return Registry.parse(data)
    except InvalidData as exc:
        raise InvalidData(f"{path}: not a valid genesis registry: {exc}") from exc


def load_proposal(path: Path) -> Record:
    """Read a proposal file: one governance record of chain KP, signed or not."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidData(f"{path}: cannot read the proposal: {exc.strerror}") from exc
    try:
        record = Record.from_value(load_json(data, what="proposal"))
    except InvalidData as exc:
        raise InvalidData(f"{path}: not a governance proposal: {exc}") from exc
    if record.chain != GOVERNANCE_CHAIN or record.kind not in GOVERNANCE_KINDS:
        raise InvalidData(
            f"{path}: not a governance proposal: a {record.kind.value} record of chain "
            f"{record.chain} (proposals are member.admit, member.suspend, member.reinstate "
            "or key.replace records of chain KP)"
        )
    return record


def _write(path: Path, record: Record, *, overwrite: bool) -> None:
    """Write the record's canonical JSON atomically (a signer's crash leaves the old file)."""
    if path.exists() and not overwrite:
        raise InvalidData(f"{path} exists; choose another file or pass --force")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(record.raw + b"\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _count_valid(record: Record, registry: Registry) -> int:
    """Distinct governance keys of ``registry`` with a valid signature on the record."""
    unsigned = record.unsigned_bytes()
    keys = {k.key_id: k for k in registry.governance_keys}
    valid: set[str] = set()
    for s in record.sigs:
        key = keys.get(s.key_id)
        if key is None or s.key_id in valid:
            continue
        try:
            key.verify(Tag.SIG_RECORD, unsigned, s.sig)
        except LedgerError:
            continue
        valid.add(s.key_id)
    return len(valid)


def sign_proposal(record: Record, signer_key: Any, registry: Registry | None) -> Record:
    """The record with one more signature by ``signer_key`` (an ``Ed25519Signer``)."""
    public: PublicKey = signer_key.public
    if registry is not None:
        if record.network != registry.network_id:
            raise InvalidData(
                f"the proposal is for network {record.network[:16]}, the registry is "
                f"{registry.network_id[:16]}"
            )
        if public.key_id not in {k.key_id for k in registry.governance_keys}:
            raise InvalidData(f"key {public.key_id[:16]} is not a governance key of the registry")
    if any(s.key_id == public.key_id for s in record.sigs):
        raise InvalidData(f"key {public.key_id[:16]} has already signed this proposal")
    unsigned = record.unsigned_bytes()
    doc = load_json(unsigned)
    sigs = [{"key_id": s.key_id, "sig": s.sig.hex()} for s in record.sigs]
    sigs.append({"key_id": public.key_id, "sig": signer_key.sign(Tag.SIG_RECORD, unsigned).hex()})
    doc["sigs"] = sigs
    return Record.parse(canonical_bytes(doc))


def sign_proposal_file(path: Path, signer_key: Any, registry: Registry | None) -> Record:
    """What ``kpl governance sign`` does: one more signature, the file rewritten atomically."""
    signed = sign_proposal(load_proposal(path), signer_key, registry)
    _write(path, signed, overwrite=True)
    return signed


def write_proposal(
    kind: Kind,
    body: dict[str, Any],
    registry: Registry,
    out: Path,
    *,
    record_id: str | None = None,
    overwrite: bool = False,
) -> Record:
    """What ``kpl governance propose`` does: the unsigned record of chain KP, in ``out``."""
    now = datetime.now(UTC)
    record = make_record(
        network=registry.network_id,
        chain=GOVERNANCE_CHAIN,
        kind=kind,
        record_id=record_id or f"{kind.value}-{body['code']}-{now:%Y%m%dT%H%M%SZ}",
        time=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        body=body,
    )
    _write(out, record, overwrite=overwrite)
    return record


def submit_proposal(
    record: Record, node: str, registry: Registry, *, timeout: float = 30.0
) -> dict[str, Any]:
    """Post a proposal that meets the threshold; follow a node's pointer to the KP sealer."""
    valid = _count_valid(record, registry)
    if valid < registry.threshold:
        raise ThresholdError(
            f"proposal {record.id} is not ready", valid=valid, required=registry.threshold
        )
    if record.network != registry.network_id:
        raise InvalidData(
            f"the proposal is for network {record.network[:16]}, the node's is "
            f"{registry.network_id[:16]}"
        )
    url = node.rstrip("/")
    with httpx.Client(timeout=timeout) as http:
        for _ in range(2):
            try:
                response = http.post(
                    f"{url}/v1/governance",
                    content=record.raw,
                    headers={"Content-Type": "application/json"},
                )
            except httpx.HTTPError as exc:
                raise LedgerError(f"cannot reach {url}: {exc}") from exc
            try:
                answer: dict[str, Any] = response.json()
            except ValueError as exc:
                raise LedgerError(f"{url} answered HTTP {response.status_code}, not JSON") from exc
            sealer_url = answer.get("sealer_url")
            if response.status_code == 409 and isinstance(sealer_url, str) and sealer_url != url:
                err.print(f"{url} does not seal chain KP; submitting to {sealer_url}")
                url = sealer_url.rstrip("/")
                continue
            if response.status_code >= 400:
                raise LedgerError(f"{url} refused the proposal: {answer.get('detail', answer)}")
            return answer
    raise LedgerError(f"{url} does not seal chain KP either")


def _registry_of(node: str) -> Registry:
    try:
        response = httpx.get(f"{node.rstrip('/')}/v1/registry", timeout=10.0)
    except httpx.HTTPError as exc:
        raise LedgerError(f"cannot reach {node}: {exc}") from exc
    if response.status_code != 200:
        raise LedgerError(f"{node}/v1/registry answered HTTP {response.status_code}")
    return Registry.parse(response.content)


# ---------------------------------------------------------------- propose

RegistryOpt = Annotated[
    Path, typer.Option("--registry", help="the network's genesis.json (gives the network id)")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="proposal file to write")]
ForceOpt = Annotated[bool, typer.Option("--force", help="overwrite an existing file")]
IdOpt = Annotated[str | None, typer.Option("--id", help="record id (default: kind, code and time)")]
ReasonOpt = Annotated[str, typer.Option(help="why: KP plenary decision, reference, ...")]


def _public_key(value: str) -> PublicKey:
    """A public key given as 64 hex digits or as a public key file."""
    if _HEX_KEY.match(value):
        return PublicKey.from_hex(value, field="key")
    path = Path(value)
    if not path.exists():
        raise InvalidData(f"--key {value}: neither 64 hex digits nor an existing public key file")
    return load_public_key(path)


def _propose(
    kind: Kind,
    body: dict[str, Any],
    registry_path: Path,
    out: Path,
    force: bool,
    record_id: str | None,
) -> None:
    try:
        registry = load_registry(registry_path)
        record = write_proposal(kind, body, registry, out, record_id=record_id, overwrite=force)
    except LedgerError as exc:
        raise _fail(exc) from exc
    console.print(
        f"proposal {record.id} ({kind.value} {body['code']}) written to {out}; it needs "
        f"{registry.threshold} of {len(registry.governance_keys)} governance signatures: "
        f"kpl governance sign {out} --key gov-N.key"
    )


@propose_app.command("admit")
def propose_admit(
    registry: RegistryOpt,
    out: OutOpt,
    code: Annotated[str, typer.Option(help="the new participant's code, e.g. NA")],
    name: Annotated[str, typer.Option(help="its name, e.g. Namibia")],
    url: Annotated[str, typer.Option(help="its node's URL")],
    key: Annotated[str, typer.Option(help="its node's public key: a .pub file or 64 hex digits")],
    role: Annotated[str, typer.Option(help="authority, auditor or observer")] = "authority",
    record_id: IdOpt = None,
    force: ForceOpt = False,
) -> None:
    """Admit a participant: its code, name, role, node URL and public key."""
    try:
        public = _public_key(key)
    except LedgerError as exc:
        raise _fail(exc) from exc
    body = {"code": code, "name": name, "role": role, "url": url, "key": public.hex()}
    _propose(Kind.MEMBER_ADMIT, body, registry, out, force, record_id)


@propose_app.command("suspend")
def propose_suspend(
    registry: RegistryOpt,
    out: OutOpt,
    code: Annotated[str, typer.Option(help="the participant to suspend")],
    reason: ReasonOpt,
    record_id: IdOpt = None,
    force: ForceOpt = False,
) -> None:
    """Suspend a participant: no certificate to or from it is accepted after this."""
    _propose(Kind.MEMBER_SUSPEND, {"code": code, "reason": reason}, registry, out, force, record_id)


@propose_app.command("reinstate")
def propose_reinstate(
    registry: RegistryOpt,
    out: OutOpt,
    code: Annotated[str, typer.Option(help="the suspended participant to reinstate")],
    reason: ReasonOpt,
    record_id: IdOpt = None,
    force: ForceOpt = False,
) -> None:
    """Reinstate a suspended participant: its trade is accepted again."""
    _propose(
        Kind.MEMBER_REINSTATE, {"code": code, "reason": reason}, registry, out, force, record_id
    )


@propose_app.command("key-replace")
def propose_key_replace(
    registry: RegistryOpt,
    out: OutOpt,
    code: Annotated[str, typer.Option(help="whose key: a participant code, or KP")],
    key: Annotated[str, typer.Option(help="the new public key: a .pub file or 64 hex digits")],
    from_height: Annotated[
        int,
        typer.Option(
            help="first height of the chain the new key signs: one above the highest "
            "height any node holds of it"
        ),
    ],
    reason: ReasonOpt,
    record_id: IdOpt = None,
    force: ForceOpt = False,
) -> None:
    """Emergency key replacement (a stolen or lost key), by the governance threshold."""
    try:
        public = _public_key(key)
    except LedgerError as exc:
        raise _fail(exc) from exc
    body = {"code": code, "key": public.hex(), "from_height": from_height, "reason": reason}
    _propose(Kind.KEY_REPLACE, body, registry, out, force, record_id)


# ---------------------------------------------------------------- sign, submit


@app.command("sign")
def sign(
    proposal: Annotated[Path, typer.Argument(help="the proposal file (rewritten in place)")],
    key: Annotated[Path, typer.Option(help="one governance key file, e.g. gov-0.key")],
    registry: Annotated[
        Path | None,
        typer.Option(help="genesis.json: check the key and network, count the signatures"),
    ] = None,
) -> None:
    """Add one governance signature, offline (passphrase: env KPL_PASSPHRASE or prompt)."""
    try:
        load_proposal(proposal)  # a bad file is named before the passphrase is asked
        reg = load_registry(registry) if registry is not None else None
        passphrase = read_passphrase(PASS_ENV, prompt=f"passphrase of {key}: ")
        signer = load_key(key, passphrase)
        signed = sign_proposal_file(proposal, signer, reg)
    except LedgerError as exc:
        raise _fail(exc) from exc
    count = (
        f"signed by {_count_valid(signed, reg)} of {reg.threshold} required"
        if reg is not None
        else f"{len(signed.sigs)} signature(s)"
    )
    console.print(f"{proposal}: signed with key {signer.public.key_id[:16]}; {count}")


@app.command("submit")
def submit(
    proposal: Annotated[Path, typer.Argument(help="the signed proposal file")],
    node: Annotated[str, typer.Option(help="any node's URL; the KP sealer's is best")],
    registry: Annotated[
        Path | None,
        typer.Option(help="genesis.json to count signatures against (default: the node's)"),
    ] = None,
) -> None:
    """Land the proposal on chain KP once it carries the governance threshold."""
    try:
        record = load_proposal(proposal)
        reg = load_registry(registry) if registry is not None else _registry_of(node)
        answer = submit_proposal(record, node, reg)
    except LedgerError as exc:
        raise _fail(exc) from exc
    if answer.get("status") == "committed":
        again = " (already there)" if answer.get("duplicate") else ""
        console.print(
            f"{record.kind.value} {record.body_json.get('code')}: committed on chain KP at "
            f"height {answer.get('height')}, index {answer.get('index')}{again}"
        )
        return
    raise _fail(
        f"{record.kind.value} {record.body_json.get('code')} refused: "
        f"{answer.get('rule', '')} {answer.get('field', '')}: {answer.get('reason', answer)}",
        code=1,
    )
