"""Rich renderings shared by the CLI commands."""

from __future__ import annotations

from typing import Any

from rich.tree import Tree

__all__ = ["carats", "history_tree"]


def carats(hundredths: int) -> str:
    return f"{hundredths // 100:,}.{hundredths % 100:02d} ct"


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

    def grow(node: Tree, pid: str, seen: frozenset[str]) -> None:
        for parent in sorted(parents.get(pid, [])):
            if parent not in seen:
                grow(node.add(label(parent)), parent, seen | {parent})

    grow(tree, history["subject"], frozenset({history["subject"]}))
    return tree
