"""``kpl verify FILE [--registry genesis.json] [--parcel ID] [--online URL]``: check a
provenance bundle offline, then optionally against a node's current state.

Exit codes: 0 the bundle verifies; 1 it does not (the failing step is
printed); 2 an input cannot be used (missing or unreadable file, a
``--registry`` file that is not a valid signed registry, a node that cannot
be reached or answers nonsense).

``--online URL`` adds step 8 (*online*) after the seven offline steps: the node
at URL must be on the bundle's network (its ``/v1/registry`` has the same
network id) and report the subject (``/v1/parcels/ID``, public fields) in the
jurisdiction, status and weight the bundle proves. A difference means records
after the bundle's (or left out of it): the bundle cannot show those, the node
can. The node is not trusted for anything else: what it says is only compared.

``--json`` prints ``{"ok", "file", "step", "step_number", "error", "registry",
"verdict"}``: ``registry`` is ``"pinned"`` or ``"carried"`` (the bundle's own,
not pinned), ``verdict`` is ``Verdict.to_json()`` when ``ok``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape

from kpledger.cli.exits import Exit, error_json, print_json
from kpledger.cli.render import carats
from kpledger.ledger.bundle import MAX_BUNDLE_BYTES, STEPS, Source, Verdict, check_bundle
from kpledger.ledger.canonical import canonical_bytes, load_json
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.registry import Registry

__all__ = ["verify_command"]

EXIT_OK = int(Exit.OK)
EXIT_INVALID = int(Exit.VERIFICATION_FAILED)
EXIT_INPUT = int(Exit.INVALID_INPUT)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _Unusable(Exception):
    """An input file that cannot be used; the message says why."""


ONLINE_TIMEOUT = 10.0


def _online(url: str, verdict: Verdict) -> str | None:
    """Step 8: compare the verdict's subject with the node's current state; the
    difference found, or None. Raises ``_Unusable`` if the node cannot be used."""
    base = url.rstrip("/")
    try:
        with httpx.Client(timeout=ONLINE_TIMEOUT) as client:
            reg = client.get(f"{base}/v1/registry")
            answer = client.get(f"{base}/v1/parcels/{verdict.subject}")
    except httpx.HTTPError as exc:
        raise _Unusable(f"node {url} cannot be reached: {exc}") from None
    if reg.status_code != 200:
        raise _Unusable(f"node {url}: GET /v1/registry answered {reg.status_code}")
    try:
        network = Registry.parse(
            canonical_bytes(load_json(reg.content, what="registry"))
        ).network_id
    except InvalidData as exc:
        raise _Unusable(f"node {url} serves no valid registry: {exc}") from None
    if network != verdict.network:
        return (
            f"node {url} is on network {network[:16]}..., the bundle on "
            f"{verdict.network[:16]}...: ask a node of the bundle's network"
        )
    if answer.status_code == 404:
        return f"node {url} holds no parcel {verdict.subject}"
    if answer.status_code != 200:
        raise _Unusable(
            f"node {url}: GET /v1/parcels/{verdict.subject} answered {answer.status_code}"
        )
    try:
        held = answer.json()
        now = (str(held["jurisdiction"]), str(held["status"]), int(held["weight"]))
    except (ValueError, KeyError, TypeError):
        raise _Unusable(
            f"node {url} answered a parcel without jurisdiction, status, weight"
        ) from None
    proven = (verdict.chain, verdict.status.value, verdict.weight)
    if now == proven:
        return None
    chain, height, _ = verdict.as_of
    return (
        f"node {url} reports {verdict.subject} {now[1]} under {now[0]}, {now[2]} ct/100; the "
        f"bundle proves it {proven[1]} under {proven[0]}, {proven[2]} ct/100 as of block "
        f"{chain}/{height}: records after the bundle's (or left out of it) changed it; "
        "ask for a fresh bundle"
    )


def _read(path: Path, what: str, limit: int) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(limit + 1)
    except FileNotFoundError:
        raise _Unusable(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise _Unusable(f"cannot read {what} {path}: {exc}") from None


def _trusted_registry(path: Path) -> bytes:
    data = _read(path, "registry file", 16 * 1024 * 1024)
    try:
        canonical = canonical_bytes(load_json(data, what="registry file"))
        Registry.parse(canonical)
    except InvalidData as exc:
        raise _Unusable(f"{path} is not a valid signed genesis registry: {exc}") from None
    return canonical


def _source_row(s: Source) -> tuple[str, str]:
    """A root of the lineage: a registration at a mine, or a first sale on a claim."""
    if s.first_sale:
        return (
            "claim",
            f"{s.parcel}: {carats(s.weight)} bought at first sale on {s.chain}'s claim "
            f"{s.mine}, {s.produced} (record {s.ref.chain}/{s.ref.index})",
        )
    return (
        "mine",
        f"{s.parcel}: {carats(s.weight)} registered by {s.chain} at {s.mine}, "
        f"produced {s.produced} (record {s.ref.chain}/{s.ref.index})",
    )


def _show(verdict: Verdict, path: Path, registry: Path | None) -> None:
    total = sum(q for _, q in verdict.origin) or 1
    origin = ", ".join(f"{c} {q * 100 / total:.1f}% ({carats(q)})" for c, q in verdict.origin)
    chain, height, time = verdict.as_of
    custodian = verdict.custodian or "none (in transit)"
    rows = [
        ("parcel", f"{verdict.subject}  {carats(verdict.weight)}  HS {verdict.hs}"),
        ("origin", origin),
    ]
    if verdict.claims:
        rows.append(
            ("claims", ", ".join(f"{c} ({carats(q)})" for c, q in verdict.claims)),
        )
    rows += [
        (
            "held",
            f"under {verdict.chain}, custodian {custodian}, {verdict.status.value} "
            f"(as of block {chain}/{height}, {time})",
        ),
    ]
    rows += [_source_row(s) for s in verdict.sources]
    rows.append(("lineage", ", ".join(verdict.lineage) or "none: registered at the mine"))
    rows += [
        (
            "certificate",
            f"{c.number} {c.issuer} -> {c.destination}, {carats(c.carats)}, origin {c.origin}, "
            f"issued {c.issued}, {c.status.value}",
        )
        for c in verdict.certificates
    ]
    rows.append(
        (
            "checked",
            f"{verdict.records} records, {verdict.headers} signed headers; "
            f"network {verdict.network}",
        )
    )
    out.print(
        f"[bold green]verified[/]: {escape(str(path))} proves the provenance of {verdict.subject}"
    )
    for label, text in rows:
        out.print(f"  [bold]{label:<12}[/] {escape(text)}")
    if registry is None:
        out.print(
            "[yellow]note[/]: no --registry given: the bundle is consistent under the registry "
            f"it carries (network {verdict.network[:16]}...); pin the genesis registry you trust "
            "with --registry to rule out a whole fabricated network."
        )
    else:
        out.print(f"registry: pinned, identical to {escape(str(registry))}")
    out.print(
        "The status is as of the parcel's last record in the bundle; "
        "a bundle cannot show records made after it was built."
    )


def verify_command(
    path: Path,
    registry: Path | None,
    parcel: str | None = None,
    as_json: bool = False,
    online: str | None = None,
) -> int:
    """Verify the bundle at ``path``; print the verdict or the failing step; return the exit code.

    ``registry`` pins the genesis registry the caller trusts: the bundle's must
    equal it in canonical form. ``parcel`` is the parcel the caller expects.
    """
    try:
        data = _read(path, "bundle file", MAX_BUNDLE_BYTES)
        trusted = _trusted_registry(registry) if registry is not None else None
    except _Unusable as exc:
        if as_json:
            error_json(Exit.INVALID_INPUT, str(exc), file=str(path))
        else:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
        return EXIT_INPUT
    if as_json:
        return _verify_json(path, data, trusted, registry is not None, parcel, online)
    result = check_bundle(data, registry=trusted, parcel=parcel)
    if not result.ok or result.verdict is None:
        err.print(f"[bold red]NOT verified[/]: {escape(str(path))}")
        err.print(escape(result.error or f"step {result.step} failed"))
        return EXIT_INVALID
    if online is not None:
        try:
            differs = _online(online, result.verdict)
        except _Unusable as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return EXIT_INPUT
        if differs is not None:
            err.print(f"[bold red]NOT verified[/]: {escape(str(path))}")
            err.print(escape(f"step 8 (online): {differs}"))
            return EXIT_INVALID
    _show(result.verdict, path, registry)
    if online is not None:
        out.print(f"online: {escape(online)} reports the same state now (step 8)")
    return EXIT_OK


def _verify_json(
    path: Path,
    data: bytes,
    trusted: bytes | None,
    pinned: bool,
    parcel: str | None,
    online: str | None = None,
) -> int:
    """The verification's outcome as one JSON document on stdout."""
    result = check_bundle(data, registry=trusted, parcel=parcel)
    ok = result.ok and result.verdict is not None
    step = None if ok else result.step
    number = None if ok else STEPS.index(result.step) + 1
    error = result.error
    if ok and online is not None and result.verdict is not None:
        try:
            differs = _online(online, result.verdict)
        except _Unusable as exc:
            error_json(Exit.INVALID_INPUT, str(exc), file=str(path))
            return EXIT_INPUT
        if differs is not None:
            ok, step, number, error = False, "online", 8, f"step 8 (online): {differs}"
    print_json(
        {
            "ok": ok,
            "file": str(path),
            "step": step,
            "step_number": number,
            "error": error,
            "registry": "pinned" if pinned else "carried",
            "verdict": result.verdict.to_json() if ok and result.verdict else None,
        }
    )
    return EXIT_OK if ok else EXIT_INVALID
