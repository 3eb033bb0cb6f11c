"""``kpl verify FILE [--registry genesis.json] [--parcel ID] [--online URL ...]``: check a
provenance bundle offline, then optionally against nodes' current state.

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

``--online`` may be given several times: each node is asked, and the nodes are
compared with each other too (a node can leave records out). A node that reports
another state, or another head of the subject's chain at the same height (a
fork), fails step 8 and is named; a node that holds a shorter log of the
subject's chain than another, or stops below the bundle's block, is named as
behind or withholding records. A node that cannot be reached is listed and
skipped; exit 2 only when none can be used. The output ends with the anchor the
verdict trusted: the pinned registry, or the one the bundle carries.

``--json`` prints ``{"ok", "file", "step", "step_number", "error", "registry",
"verdict"}``: ``registry`` is ``"pinned"`` or ``"carried"`` (the bundle's own,
not pinned), ``verdict`` is ``Verdict.to_json()`` when ``ok``; with ``--online``
also ``nodes`` (each node's ``url``, ``network``, ``state``, ``heads`` and
``differences``, or ``error`` for a node that could not be used) and ``anchor``.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Answer:
    """What one node said at step 8: its network, the subject's state there (None: it
    holds no such parcel) and its head (height, size, hash) of every chain."""

    url: str
    network: str
    state: tuple[str, str, int] | None
    heads: dict[str, tuple[int, int, str]]


def _ask(url: str, subject: str) -> _Answer:
    """One node's answer for step 8. Raises ``_Unusable`` if the node cannot be used."""
    base = url.rstrip("/")
    try:
        with httpx.Client(timeout=ONLINE_TIMEOUT) as client:
            reg = client.get(f"{base}/v1/registry")
            answer = client.get(f"{base}/v1/parcels/{subject}")
            net = client.get(f"{base}/v1/network")
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
    state: tuple[str, str, int] | None = None
    if answer.status_code == 200:
        try:
            held = answer.json()
            state = (str(held["jurisdiction"]), str(held["status"]), int(held["weight"]))
        except (ValueError, KeyError, TypeError):
            raise _Unusable(
                f"node {url} answered a parcel without jurisdiction, status, weight"
            ) from None
    elif answer.status_code != 404:
        raise _Unusable(f"node {url}: GET /v1/parcels/{subject} answered {answer.status_code}")
    heads: dict[str, tuple[int, int, str]] = {}
    if net.status_code == 200:
        try:
            for chain, h in dict(net.json()["heads"]).items():
                heads[str(chain)] = (int(h["height"]), int(h["size"]), str(h["hash"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _Unusable(f"node {url} answered /v1/network without chain heads") from None
    return _Answer(url, network, state, heads)


def _differences(answers: list[_Answer], verdict: Verdict) -> list[tuple[str, str, bool]]:
    """Step 8 over every node that answered: each difference found, as (the node it
    names, the text, whether it fails the verification).

    It fails when a node is on another network, reports the subject in another state
    than the bundle proves (or not at all), or holds another head of the subject's
    chain than another node at the same height (a fork). A node that holds the
    subject's chain below the bundle's block, or a shorter log of it than another
    node asked, is named too (it is behind, or it leaves records out), without
    failing the verification while every node reports the proven state."""
    out: list[tuple[str, str, bool]] = []
    proven = (verdict.chain, verdict.status.value, verdict.weight)
    chain, height, _ = verdict.as_of
    usable = []
    for a in answers:
        if a.network != verdict.network:
            out.append(
                (
                    a.url,
                    f"node {a.url} is on network {a.network[:16]}..., the bundle on "
                    f"{verdict.network[:16]}...: ask a node of the bundle's network",
                    True,
                )
            )
            continue
        usable.append(a)
        if a.state is None:
            out.append((a.url, f"node {a.url} holds no parcel {verdict.subject}", True))
        elif a.state != proven:
            now = a.state
            out.append(
                (
                    a.url,
                    f"node {a.url} reports {verdict.subject} {now[1]} under {now[0]}, {now[2]} "
                    f"ct/100; the bundle proves it {proven[1]} under {proven[0]}, {proven[2]} "
                    f"ct/100 as of block {chain}/{height}: records after the bundle's (or left "
                    "out of it) changed it; ask for a fresh bundle",
                    True,
                )
            )
        head = a.heads.get(chain)
        if a.heads and (head is None or head[0] < height):
            got = "no block" if head is None else f"only up to {chain}/{head[0]}"
            out.append(
                (
                    a.url,
                    f"node {a.url} holds {got} of {chain}, below the bundle's block "
                    f"{chain}/{height}: it is behind, or it leaves records out",
                    False,
                )
            )
    chains = {verdict.chain} | {a.state[0] for a in usable if a.state is not None}
    for c in sorted(chains):
        held = [(a.heads[c], a.url) for a in usable if c in a.heads]
        if len(held) < 2:
            continue
        (top_height, top_size, top_hash), top_url = max(held)
        for (h, size, digest), url in held:
            if size < top_size:
                out.append(
                    (
                        url,
                        f"node {url} holds a shorter log of {c} ({size} records, head {c}/{h}) "
                        f"than node {top_url} ({top_size} records, head {c}/{top_height}): it is "
                        "behind, or it leaves records out",
                        False,
                    )
                )
            elif h == top_height and digest != top_hash:
                out.append(
                    (
                        url,
                        f"nodes {url} and {top_url} hold different heads {c}/{h}: a fork; "
                        "report it to the network's governance",
                        True,
                    )
                )
    return out


def _online(
    urls: list[str], verdict: Verdict
) -> tuple[list[_Answer], list[str], list[tuple[str, str, bool]]]:
    """Step 8 against every node of ``urls``: the answers, the nodes that could not be
    used (why), and the differences. Raises ``_Unusable`` if no node could be used."""
    answers: list[_Answer] = []
    unusable: list[str] = []
    for url in urls:
        try:
            answers.append(_ask(url, verdict.subject))
        except _Unusable as exc:
            unusable.append(str(exc))
    if not answers:
        raise _Unusable("; ".join(unusable))
    return answers, unusable, _differences(answers, verdict)


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
    rows.append(
        (
            "checkpoints",
            ", ".join(f"{c}/{h} ({t})" for c, h, t in verdict.checkpoints)
            + ": every record of the parcel up to these headers is in the bundle",
        )
    )
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
        "The status is as of the checkpoints above; a bundle cannot show records made "
        "after them (kpl verify --online URL compares it with nodes now)."
    )


def _anchor(registry: Path | None, verdict: Verdict) -> str:
    """The trust anchor of the verdict, in words."""
    if registry is None:
        return f"the registry the bundle carries (network {verdict.network[:16]}..., not pinned)"
    return f"the pinned registry {registry} (network {verdict.network[:16]}...)"


def _urls(online: str | list[str] | None) -> list[str]:
    if online is None:
        return []
    return [online] if isinstance(online, str) else list(online)


def verify_command(
    path: Path,
    registry: Path | None,
    parcel: str | None = None,
    as_json: bool = False,
    online: str | list[str] | None = None,
) -> int:
    """Verify the bundle at ``path``; print the verdict or the failing step; return the exit code.

    ``registry`` pins the genesis registry the caller trusts: the bundle's must
    equal it in canonical form. ``parcel`` is the parcel the caller expects.
    ``online`` is one node URL or several: step 8 asks each and compares them.
    """
    urls = _urls(online)
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
        return _verify_json(path, data, trusted, registry, parcel, urls)
    result = check_bundle(data, registry=trusted, parcel=parcel)
    if not result.ok or result.verdict is None:
        err.print(f"[bold red]NOT verified[/]: {escape(str(path))}")
        err.print(escape(result.error or f"step {result.step} failed"))
        return EXIT_INVALID
    if urls:
        try:
            answers, unusable, differs = _online(urls, result.verdict)
        except _Unusable as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return EXIT_INPUT
        if any(fails for _, _, fails in differs):
            err.print(f"[bold red]NOT verified[/]: {escape(str(path))}")
            for _, line, _ in differs:
                err.print(escape(f"step 8 (online): {line}"))
            for line in unusable:
                err.print(escape(f"step 8 (online): not compared: {line}"))
            err.print(
                escape(
                    f"anchor trusted: {_anchor(registry, result.verdict)}; the nodes' answers "
                    "were compared, not trusted"
                )
            )
            return EXIT_INVALID
    _show(result.verdict, path, registry)
    if urls:
        chain = result.verdict.as_of[0]
        logs = ", ".join(
            f"{a.url} ({a.heads[chain][1]} records of {chain})" if chain in a.heads else a.url
            for a in answers
        )
        who = (
            f"{logs} reports" if len(answers) == 1 else f"all {len(answers)} nodes ({logs}) report"
        )
        out.print(escape(f"online: {who} the same state now (step 8)"))
        for _, line, _ in differs:
            out.print(f"[yellow]online: disagreement[/]: {escape(line)}")
        for line in unusable:
            out.print(escape(f"online: not compared: {line}"))
        out.print(
            escape(
                f"anchor trusted: {_anchor(registry, result.verdict)}; the nodes' answers "
                "were compared, not trusted"
            )
        )
    return EXIT_OK


def _verify_json(
    path: Path,
    data: bytes,
    trusted: bytes | None,
    registry: Path | None,
    parcel: str | None,
    urls: list[str],
) -> int:
    """The verification's outcome as one JSON document on stdout."""
    result = check_bundle(data, registry=trusted, parcel=parcel)
    ok = result.ok and result.verdict is not None
    step = None if ok else result.step
    number = None if ok else STEPS.index(result.step) + 1
    error = result.error
    nodes: list[dict[str, object]] = []
    if ok and urls and result.verdict is not None:
        try:
            answers, unusable, differs = _online(urls, result.verdict)
        except _Unusable as exc:
            error_json(Exit.INVALID_INPUT, str(exc), file=str(path))
            return EXIT_INPUT
        nodes = [
            {
                "url": a.url,
                "network": a.network,
                "state": None
                if a.state is None
                else {"jurisdiction": a.state[0], "status": a.state[1], "weight": a.state[2]},
                "heads": {c: {"height": h, "size": n} for c, (h, n, _) in sorted(a.heads.items())},
                "differences": [
                    {"text": text, "fails": fails} for url, text, fails in differs if url == a.url
                ],
            }
            for a in answers
        ]
        nodes += [{"url": None, "error": line} for line in unusable]
        if any(fails for _, _, fails in differs):
            lines = "; ".join(text for _, text, fails in differs if fails)
            ok, step, number, error = False, "online", 8, f"step 8 (online): {lines}"
    doc: dict[str, object] = {
        "ok": ok,
        "file": str(path),
        "step": step,
        "step_number": number,
        "error": error,
        "registry": "pinned" if registry is not None else "carried",
        "verdict": result.verdict.to_json() if ok and result.verdict else None,
    }
    if urls:
        doc["nodes"] = nodes
        if result.verdict is not None:
            doc["anchor"] = _anchor(registry, result.verdict)
    print_json(doc)
    return EXIT_OK if ok else EXIT_INVALID
