"""Public KP statistics used as facts: 2023 rough-diamond production by participant.

Carats and US dollars for the 21 producing participants of 2023, aggregated
from public Kimberley Process statistics. They give the demo and benchmarks
realistic weights and prices, and the audit report its reference prices
(price-per-carat outliers) and its list of producing participants
("production declared where none is recorded").
"""

from __future__ import annotations

__all__ = ["PARTICIPANT_NAMES", "PRODUCERS", "PRODUCTION_2023", "usd_per_carat"]

#: display names of KP participants (and the observer WDC) by their code
PARTICIPANT_NAMES = {
    "BW": "Botswana",
    "RU": "Russian Federation",
    "AE": "United Arab Emirates",
    "EU": "European Union",
    "IN": "India",
    "NA": "Namibia",
    "CD": "Democratic Republic of the Congo",
    "CA": "Canada",
    "ZA": "South Africa",
    "AO": "Angola",
    "WDC": "World Diamond Council",
}

#: participant -> (carats, US dollars) produced in 2023
PRODUCTION_2023: dict[str, tuple[int, int]] = {
    "RU": (37_316_754, 3_606_402_128),  # Russian Federation
    "BW": (25_094_818, 3_283_178_851),  # Botswana
    "CA": (15_980_776, 1_549_505_947),  # Canada
    "AO": (9_754_310, 1_531_977_106),  # Angola
    "CD": (8_347_463, 64_963_509),  # Congo Democratic Republic of
    "ZA": (5_891_885, 793_950_820),  # South Africa
    "ZW": (4_913_593, 303_160_955),  # Zimbabwe
    "NA": (2_385_157, 1_233_962_612),  # Namibia
    "LS": (1_018_617, 296_554_990),  # Lesotho
    "SL": (525_458, 102_494_009),  # Sierra Leone
    "GH": (203_000, 9_700_000),  # Ghana
    "TZ": (191_010, 31_159_267),  # Tanzania
    "GN": (120_040, 9_701_030),  # Guinea
    "CF": (111_922, 11_705_132),  # Central African Republic
    "BR": (78_252, 24_904_671),  # Brazil
    "GY": (72_301, 10_861_245),  # Guyana
    "LR": (56_842, 17_910_115),  # Liberia
    "CG": (4_074, 320_224),  # Congo Republic of
    "CM": (2_950, 223_805),  # Cameroon
    "CI": (2_368, 97_932),  # Cote D'ivoire
    "ML": (182, 55_368),  # Mali
}

PRODUCERS = frozenset(PRODUCTION_2023)


def usd_per_carat(code: str) -> float | None:
    """Average 2023 value of a producer's output in USD per carat, if it produced."""
    found = PRODUCTION_2023.get(code)
    return None if found is None else found[1] / found[0]
