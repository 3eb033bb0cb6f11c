"""The artisanal chain for the API: production by method and the internal controls
(statistics), the export-surplus finding (audit report), and a country's diagnostic
self-assessment beside the indicators the ledger computes.

The indicator list is data: the file ``node.indicators`` names, or the list shipped
in ``api/data/indicators.json`` (labels by topic, not official text).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

from kpledger.api.schemas import ExportSurplusList, ExportSurplusOut
from kpledger.api.schemas_artisanal import (
    AssessmentOut,
    ControlsOut,
    ControlsRow,
    DiagnosticsOut,
    IndicatorOut,
    MethodRow,
)
from kpledger.ledger.artisanal import Indicator, parse_indicators
from kpledger.ledger.errors import InvalidData, SchemaError
from kpledger.ledger.records import GOVERNANCE_CHAIN
from kpledger.ledger.state import chains_of
from kpledger.ledger.store import Store
from kpledger.ledger.store.audit import (
    Bounded,
    ControlRow,
    ExportSurplus,
    MethodTotal,
    Period,
    parse_period,
)

__all__ = [
    "controls_out",
    "controls_row",
    "diagnostics",
    "indicators",
    "method_row",
    "surplus_list",
]


@cache
def _load(path: Path | None) -> tuple[Indicator, ...]:
    if path is None:
        text = resources.files("kpledger.api").joinpath("data/indicators.json").read_text("utf-8")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SchemaError(f"cannot read the indicator list {path}: {exc}") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"the indicator list {path or 'shipped'} is not JSON: {exc}") from exc
    return parse_indicators(doc)


def indicators(path: Path | None = None) -> tuple[Indicator, ...]:
    """The network's indicator list (``node.indicators``), else the shipped one."""
    return _load(path)


def method_row(m: MethodTotal) -> MethodRow:
    return MethodRow.model_validate(asdict(m))


def controls_row(r: ControlRow) -> ControlsRow:
    t, c = r.totals, r.controls
    return ControlsRow(
        participant=r.participant,
        purchased=t.purchased,
        registered=t.registered,
        imported=t.imported,
        exported=t.exported,
        exported_traced=t.exported_traced,
        purchases=t.purchases,
        **c.to_json(),
    )


def surplus_list(found: Bounded[ExportSurplus]) -> ExportSurplusList:
    return ExportSurplusList(
        items=[ExportSurplusOut.model_validate(asdict(x)) for x in found.items],
        truncated=found.truncated,
    )


def controls_out(store: Store, period_text: str) -> ControlsOut:
    """The internal controls and production by method for ``2025`` or ``2025-Q1``."""
    period = parse_period(period_text)
    assert period.since is not None
    found = store.audit.statistics(period)
    return ControlsOut(
        period=period_text,
        start=period.since.isoformat(),
        end=period.until.isoformat(),
        controls=[controls_row(r) for r in found.controls],
        methods=[method_row(m) for m in found.methods],
    )


def diagnostics(store: Store, country: str, path: Path | None, today: date) -> DiagnosticsOut:
    """``country``'s self-assessments over time, and the controls of each year they span."""
    if country not in chains_of(store) or country == GOVERNANCE_CHAIN:
        raise InvalidData(f"{country} is not an authority of this network", field="country")
    listed = indicators(path)
    known = {i.id: i for i in listed}
    rows = store.audit.assessments(country)
    out: list[AssessmentOut] = []
    for a in rows:
        ind = known.get(a.indicator)
        out.append(
            AssessmentOut(
                indicator=a.indicator,
                topic=ind.topic if ind else "not in this network's list",
                title=ind.title if ind else a.indicator,
                score=a.score,
                scale=ind.scale if ind else 100,
                evidence=a.evidence,
                assessed=a.assessed,
                chain=a.ref.chain,
                index=a.ref.index,
                hash=a.ref.hash.hex(),
            )
        )
    years = {int(a.assessed[:4]) for a in rows} | {today.year}
    controls: dict[str, ControlsRow] = {}
    for year in sorted(years):
        period = Period(date(year, 1, 1), min(date(year, 12, 31), today))
        for r in store.audit.statistics(period).controls:
            if r.participant == country:
                controls[str(year)] = controls_row(r)
    return DiagnosticsOut(
        country=country,
        indicators=[IndicatorOut(**i.to_json()) for i in listed],
        assessments=out,
        controls=controls,
    )
