"""``kpl verify FILE [--registry genesis.json] [--parcel ID]``: check a provenance bundle offline.

Exit codes: 0 the bundle verifies; 1 it does not (the failing step is
printed); 2 an input cannot be used (missing or unreadable file, a
``--registry`` file that is not a valid signed registry).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from cli.render import carats
from ledger.bundle import MAX_BUNDLE_BYTES, Verdict, check_bundle
from ledger.canonical import canonical_bytes, load_json
from ledger.errors import InvalidData
from ledger.registry import Registry

__all__ = ["verify_command"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_INPUT = 2

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _read(path: Path, what: str, limit: int) -> bytes | None:
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        err.print(f"[bold red]error:[/] {what} {escape(str(path))} does not exist")
        return None
    except OSError as exc:
        err.print(f"[bold red]error:[/] cannot read {what} {escape(str(path))}: {escape(str(exc))}")
        return None
    return data


def _trusted_registry(path: Path) -> bytes | None:
    data = _read(path, "registry file", 16 * 1024 * 1024)
    if data is None:
        return None
    try:
        canonical = canonical_bytes(load_json(data, what="registry file"))
        Registry.parse(canonical)
    except InvalidData as exc:
        err.print(
            f"[bold red]error:[/] {escape(str(path))} is not a valid signed genesis registry: "
            f"{escape(str(exc))}"
        )
        return None
    return canonical


def _show(verdict: Verdict, path: Path, registry: Path | None) -> None:
    total = sum(q for _, q in verdict.origin) or 1
    origin = ", ".join(f"{c} {q * 100 / total:.1f}% ({carats(q)})" for c, q in verdict.origin)
    chain, height, time = verdict.as_of
    custodian = verdict.custodian or "none (in transit)"
    rows = [
        ("parcel", f"{verdict.subject}  {carats(verdict.weight)}  HS {verdict.hs}"),
        ("origin", origin),
        (
            "held",
            f"under {verdict.chain}, custodian {custodian}, {verdict.status.value} "
            f"(as of block {chain}/{height}, {time})",
        ),
    ]
    rows += [
        (
            "mine",
            f"{s.parcel}: {carats(s.weight)} registered by {s.chain} at {s.mine}, "
            f"produced {s.produced} (record {s.ref.chain}/{s.ref.index})",
        )
        for s in verdict.sources
    ]
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


def verify_command(path: Path, registry: Path | None, parcel: str | None = None) -> int:
    """Verify the bundle at ``path``; print the verdict or the failing step; return the exit code.

    ``registry`` pins the genesis registry the caller trusts: the bundle's must
    equal it in canonical form. ``parcel`` is the parcel the caller expects.
    """
    data = _read(path, "bundle file", MAX_BUNDLE_BYTES)
    if data is None:
        return EXIT_INPUT
    trusted: bytes | None = None
    if registry is not None:
        trusted = _trusted_registry(registry)
        if trusted is None:
            return EXIT_INPUT
    result = check_bundle(data, registry=trusted, parcel=parcel)
    if not result.ok or result.verdict is None:
        err.print(f"[bold red]NOT verified[/]: {escape(str(path))}")
        err.print(escape(result.error or f"step {result.step} failed"))
        return EXIT_INVALID
    _show(result.verdict, path, registry)
    return EXIT_OK
