"""Rich renderings shared by the CLI commands."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.tree import Tree

__all__ = ["STATUS_WORDS", "artisanal_tables", "carats", "history_tree", "ref", "status_text"]

#: one word per certificate state, the ledger's, with what it means for a buyer
STATUS_WORDS = {
    "issued": "issued (in transit: the importing authority has not confirmed it yet)",
    "confirmed": "confirmed by the importing authority",
    "expired": "expired (validity ended before the importing authority confirmed it)",
    "discrepancy": "discrepancy (confirmed with a weight outside the tolerance: parcels held)",
    "voided": "voided by the issuing authority (never confirmed)",
    "refused": "refused by the importing authority",
}


def carats(hundredths: int) -> str:
    return f"{hundredths // 100:,}.{hundredths % 100:02d} ct"


def ref(record: dict[str, Any]) -> str:
    """A record reference as written everywhere: ``CHAIN/INDEX`` (record INDEX of CHAIN's log)."""
    return f"{record['chain']}/{record['index']}"


def _reason(cert: dict[str, Any]) -> str | None:
    for key in ("refusal", "refused", "closed"):
        value = cert.get(key)
        if isinstance(value, dict) and value.get("reason"):
            return str(value["reason"])
    reason = cert.get("reason") or cert.get("refusal_reason")
    return str(reason) if reason else None


def status_text(cert: dict[str, Any]) -> str:
    """A certificate's state in words (any state the node reports, never upgraded)."""
    status = str(cert.get("status", "unknown"))
    text = STATUS_WORDS.get(status, status)
    reason = _reason(cert) if status in ("refused", "voided", "discrepancy", "expired") else None
    return f"{text}: {reason}" if reason else text


def history_tree(history: dict[str, Any]) -> Tree:
    """A lineage (the JSON of GET /v1/parcels/{id}/history) as a tree back to the mines."""
    parcels = {p["id"]: p for p in history["parcels"]}
    parents: dict[str, list[str]] = {}
    for edge in history["ancestors"]:
        parents.setdefault(edge["child"], []).append(edge["parent"])
    certs: dict[str, list[str]] = {}
    mines: dict[str, str] = {}
    for ev in history["events"]:
        if ev.get("certificate"):
            certs.setdefault(ev["parcel"], [])
            if ev["certificate"] not in certs[ev["parcel"]]:
                certs[ev["parcel"]].append(ev["certificate"])
        if ev["kind"] == "parcel.register":
            mines[ev["parcel"]] = f"registered on {ev['chain']} {ev['time'][:10]}"
        elif ev["kind"] == "parcel.purchase":
            claims = ", ".join(parcels.get(ev["parcel"], {}).get("claims", {}))
            mines[ev["parcel"]] = f"first sale on {ev['chain']} {ev['time'][:10]}, claim {claims}"

    def label(pid: str) -> str:
        p = parcels.get(pid)
        if p is None:
            return pid
        origin = ", ".join(f"{c} {share:.1f}%" for c, share in p["origin_shares"].items())
        extra = [f"certificates {', '.join(certs[pid])}"] if pid in certs else []
        if pid in mines:
            extra.append(mines[pid])
        tail = f"; {'; '.join(extra)}" if extra else ""
        return (
            f"[bold]{pid}[/] {carats(p['weight'])} under {p['jurisdiction']}, "
            f"{p['status']}; origin {origin}{tail}"
        )

    tree = Tree(label(history["subject"]))
    shown: set[str] = {history["subject"]}
    # depth first, parents in id order; a parcel reached again (through another merge
    # parent) is named and points up, its lineage is not drawn twice
    stack = [(tree, p) for p in sorted(parents.get(history["subject"], []), reverse=True)]
    while stack:
        under, pid = stack.pop()
        if pid in shown:
            under.add(f"[bold]{pid}[/] [dim](its lineage is shown above)[/]")
            continue
        shown.add(pid)
        node = under.add(label(pid))
        stack += [(node, p) for p in sorted(parents.get(pid, []), reverse=True)]
    return tree


def _ppm(value: int | None) -> str:
    return "-" if value is None else f"{value / 10_000:.1f}%"


def artisanal_tables(stats: dict[str, Any]) -> list[Table]:
    """``kpl stats``: production split by method, and the artisanal producers' internal
    controls (when there are any)."""
    methods = Table(
        "participant",
        "method",
        "carats",
        "parcels",
        "first-sale USD/ct",
        title="production by method",
    )
    for row in stats.get("methods", []):
        price = row.get("cents_per_carat")
        methods.add_row(
            row["participant"],
            row["method"],
            carats(row["carats"]),
            str(row["parcels"]),
            "-" if price is None else f"{price // 100:,}.{price % 100:02d}",
        )
    if not stats.get("controls"):
        return [methods]
    controls = Table(
        "producer",
        "exports traced to claims",
        "bought by licensed buyers",
        "export surplus",
        "first sale / export price",
        title="internal controls (artisanal producers)",
    )
    for row in stats["controls"]:
        ratio = "withheld (< 3 purchases)" if row["suppressed"] else _ppm(row["price_ratio_ppm"])
        controls.add_row(
            row["participant"],
            _ppm(row["traceable_ppm"]),
            _ppm(row["licensed_ppm"]),
            carats(row["surplus"]),
            ratio,
        )
    return [methods, controls]
