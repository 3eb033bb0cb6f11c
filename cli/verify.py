"""``kpl verify FILE [--registry genesis.json] [--parcel ID]``: check a provenance bundle offline.

Exit codes: 0 the bundle verifies; 1 it does not (the failing step is
printed); 2 an input cannot be used (missing or unreadable file, a
``--registry`` file that is not a valid signed registry).

``--json`` prints ``{"ok", "file", "step", "step_number", "error", "registry",
"verdict"}``: ``registry`` is ``"pinned"`` or ``"carried"`` (the bundle's own,
not pinned), ``verdict`` is ``Verdict.to_json()`` when ``ok``.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from cli.exits import Exit, error_json, print_json
from cli.render import carats
from ledger.bundle import MAX_BUNDLE_BYTES, STEPS, Verdict, check_bundle
from ledger.canonical import canonical_bytes, load_json
from ledger.errors import InvalidData
from ledger.registry import Registry

__all__ = ["verify_command"]

EXIT_OK = int(Exit.OK)
EXIT_INVALID = int(Exit.VERIFICATION_FAILED)
EXIT_INPUT = int(Exit.INVALID_INPUT)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _Unusable(Exception):
    """An input file that cannot be used; the message says why."""


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


def verify_command(
    path: Path, registry: Path | None, parcel: str | None = None, as_json: bool = False
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
        return _verify_json(path, data, trusted, registry is not None, parcel)
    result = check_bundle(data, registry=trusted, parcel=parcel)
    if not result.ok or result.verdict is None:
        err.print(f"[bold red]NOT verified[/]: {escape(str(path))}")
        err.print(escape(result.error or f"step {result.step} failed"))
        return EXIT_INVALID
    _show(result.verdict, path, registry)
    return EXIT_OK


def _verify_json(
    path: Path, data: bytes, trusted: bytes | None, pinned: bool, parcel: str | None
) -> int:
    """The verification's outcome as one JSON document on stdout."""
    result = check_bundle(data, registry=trusted, parcel=parcel)
    ok = result.ok and result.verdict is not None
    print_json(
        {
            "ok": ok,
            "file": str(path),
            "step": None if ok else result.step,
            "step_number": None if ok else STEPS.index(result.step) + 1,
            "error": result.error,
            "registry": "pinned" if pinned else "carried",
            "verdict": result.verdict.to_json() if ok and result.verdict else None,
        }
    )
    return EXIT_OK if ok else EXIT_INVALID
