"""Response schemas of the artisanal chain: production by method, internal controls,
and the diagnostic self-assessments (README, "Artisanal
and alluvial production"). Aggregates only: no party, no single purchase's price."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = [
    "AssessmentOut",
    "ControlsOut",
    "ControlsRow",
    "DiagnosticsOut",
    "IndicatorOut",
    "MethodRow",
]


class MethodRow(BaseModel):
    participant: str
    method: str = Field(description="artisanal, alluvial or industrial (mine registrations)")
    carats: int = Field(description="hundredths of a carat")
    parcels: int
    cents_per_carat: int | None = Field(
        default=None,
        description="mean first-sale price, US cents per carat; absent when fewer than 3 "
        "purchases make the cell (no single purchase is exposed) and for mine output",
    )


class ControlsRow(BaseModel):
    """The internal-control indicators of one artisanal producer for the period."""

    participant: str
    purchased: int = Field(description="first sales, hundredths of a carat")
    registered: int = Field(description="production registered at mines, hundredths of a carat")
    imported: int = Field(description="carats received on confirmed imports (hundredths)")
    exported: int = Field(description="carats on certificates issued (hundredths)")
    exported_traced: int = Field(description="of those, hundredths traced to registered claims")
    purchases: int = Field(description="number of first sales")
    traceable_ppm: int | None = Field(
        default=None, description="exported carats traced to registered claims, per million"
    )
    licensed_ppm: int | None = Field(
        default=None, description="production bought by licensed buyers, per million"
    )
    surplus: int = Field(description="exports above production plus imports (hundredths)")
    first_sale_cents_per_carat: int | None = Field(
        default=None, description="absent when fewer than 3 purchases make the cell"
    )
    export_cents_per_carat: int | None = None
    price_ratio_ppm: int | None = Field(
        default=None, description="first-sale price per carat over export price, per million"
    )
    suppressed: bool = Field(description="the first-sale price is withheld (fewer than 3)")


class ControlsOut(BaseModel):
    period: str
    start: str
    end: str
    controls: list[ControlsRow]
    methods: list[MethodRow]


class AssessmentOut(BaseModel):
    indicator: str
    topic: str = Field(description="the indicator's topic, from the network's list")
    title: str = Field(description="the indicator's wording, as the network loaded it")
    score: int
    scale: int = Field(description="the top of the indicator's scale")
    evidence: str
    assessed: str
    chain: str
    index: int
    hash: str


class IndicatorOut(BaseModel):
    id: str
    topic: str
    title: str
    scale: int
    measure: str | None = Field(
        default=None, description="the ledger-computed indicator shown beside it, if any"
    )


class DiagnosticsOut(BaseModel):
    """A country's self-assessment over time, beside the indicators the ledger computes."""

    country: str
    indicators: list[IndicatorOut] = Field(description="the network's indicator list")
    assessments: list[AssessmentOut] = Field(description="by date, then log order")
    controls: dict[str, ControlsRow] = Field(
        description="year -> the ledger-computed internal controls of that year"
    )
