"""Tests of ledger.record_structs: the typed fast path agrees with ``Fields`` everywhere.

A record of every kind (the documented examples, committed; governance kinds
also signed) is mutated field by field: other JSON types, lengths around each
limit, characters the schema forbids or a pattern refuses, unreal dates,
broken commitments, missing and unknown keys, lists emptied, grown, repeated
and reordered, and tuples for lists. For each, the fast path alone either
declines (None) or gives exactly the ``Record`` that ``Fields`` gives; and
``Record.from_value`` (fast path first) then accepts what ``Fields`` accepts,
and refuses the rest with ``Fields``' own error and message.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterator
from enum import Enum, IntEnum, StrEnum
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpledger.api.docs_records import EXAMPLES, example_record
from kpledger.devtools import artisanal
from kpledger.devtools.realistic import realistic_blocks
from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger import record_structs
from kpledger.ledger.commit import keyed_salts
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.records import GOVERNANCE_KINDS, Kind, Record, seal_record

NETWORK = "ab" * 32
SIGNERS = [Ed25519Signer.from_seed(bytes([i]) * 32) for i in (1, 2)]

Path = tuple[str | int, ...]


def _signed(kind: str) -> dict[str, Any]:
    draft = example_record(kind, network=NETWORK)
    signers = SIGNERS if Kind(kind) in GOVERNANCE_KINDS else []
    record = seal_record(draft, salts=keyed_salts(b"k" * 32, kind), signers=signers)
    return record.as_json()


BASES: dict[str, dict[str, Any]] = {kind: _signed(kind) for kind in sorted(EXAMPLES)}


def _workload() -> list[dict[str, Any]]:
    """Records of the ingest benchmark's mix and of the artisanal story, as sealed."""
    _, blocks = realistic_blocks(1200, block_records=100)
    found = [r.as_json() for b in blocks for r in b.records]
    sc = Scenario(Network.create(("SL", "EU", "BW"), ("WDC",)))

    def seal(chain: str, *records: Record) -> None:
        found.extend(r.as_json() for r in sc.seal(chain, *records).records)

    artisanal.sierra_leone(sc, seal)
    artisanal.smuggling(sc, seal)
    return found


WORKLOAD = _workload()


def _slow(value: object, monkeypatch: pytest.MonkeyPatch) -> Record | Exception:
    with monkeypatch.context() as m:
        m.setattr(record_structs, "fast_record", lambda _value, _raw: None)
        try:
            return Record.from_value(value)
        except Exception as exc:  # noqa: BLE001 - compared with the fast path's outcome
            return exc


def _outcome(result: Record | Exception, *, exact: bool = True) -> Any:
    if isinstance(result, Exception):
        return (type(result), str(result), getattr(result, "field", None))
    return (result, repr(result) if exact else None)


def _agree(value: object, monkeypatch: pytest.MonkeyPatch, *, exact: bool = True) -> Record | None:
    """Assert the fast path agrees with ``Fields`` on ``value``; return its answer.

    ``exact``: the two records print the same too (every value of the same type); an
    enum member given for a field (never in decoded JSON) comes back as its plain value
    from the fast path, an equal record."""
    slow = _slow(value, monkeypatch)
    fast = record_structs.fast_record(copy.deepcopy(value), None)
    if fast is not None:
        assert not isinstance(slow, Exception), f"fast path accepted what Fields refuses: {slow}"
        assert _outcome(fast, exact=exact) == _outcome(slow, exact=exact)
    try:
        combined: Record | Exception = Record.from_value(value)
    except Exception as exc:  # noqa: BLE001 - compared with Fields' outcome
        combined = exc
    assert _outcome(combined, exact=exact) == _outcome(slow, exact=exact)
    return fast


def _paths(value: Any, path: Path = ()) -> Iterator[Path]:
    """Every place in a JSON document (the root excluded)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key in value:
            yield from _paths(value[key], (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*path, i))


def _get(doc: Any, path: Path) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _set(doc: Any, path: Path, value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


#: characters around every string constraint: spaces, forbidden ones, pattern edges
CHARS = [
    " ", "\t", "\n", "\x00", "\x7f", "\x85", "\u00a0", "\u00ad", "\u200b", "\u202e", "\u2028",
    "\u3000", "\ufeff", "\ue000", "\U000e0001", "\U0010fffd", "\ud800", "a", "Z", "z", "0",
    "9", "-", ".", "_", ":", "/", "é", "\u0660", "\U0001d7ce", "ǅ", "\u0130", "\u212a",
]  # fmt: skip
#: values of other types, and integers around every bound
OTHERS: list[Any] = [
    None, True, False, 0, 1, 2, -1, 100, 2**40, 10**12, 10**12 + 1, 10**15, 10**15 + 1,
    2**53 - 1, 2**53, 90_000_001, -180_000_001, 1.0, "", "x", [], {}, {"c": "0" * 64},
    "2026-02-30", "2026-13-01", "0000-01-01", "2026-01-01", "2026-01-01T24:00:00Z",
    "2026-02-29T00:00:00Z", "2028-02-29", "\u0662\u0660\u0662\u0666-01-01", "2026-Q5",
    "BW", "BW-x", "bw-X", "A" * 9, "miner", "7102.10", "0" * 64, "0" * 63, "A" * 64,
    "2001-01-01", "2099-12-31", "ABCDEFGH-" + "x" * 47, "ABCDEFGH-" + "x" * 48,
    "ABCDEFGHI-x", "a" + "b" * 79, "a" + "b" * 80, "a.b_c.d", "a.b.c.d", "a" * 31, "a" * 32,
    "a" + "_" * 30 + "." + "b" * 31 + "." + "c" * 31, "a" * 31 + "." + "b" * 31 + ".c",
    "a" * 31 + "." + "b" * 30 + ".c", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
    "2026-01-01T00:00:60Z", "2026-W01-1", "20260101",
]  # fmt: skip


def _string_variants(text: str) -> Iterator[str]:
    for char in CHARS:
        yield text + char
        yield char + text
        if len(text) > 1:
            yield text[:1] + char + text[1:]
    yield text[:-1]
    yield text[1:]
    yield text.upper()
    yield text.lower()
    for n in (7, 8, 9, 55, 56, 57, 63, 64, 65, 79, 80, 81, 120, 121, 200, 201, 300, 301, 1001):
        yield (text * n)[:n]


def _variants(value: Any) -> Iterator[Any]:
    """Mutations of one value, in place of it."""
    yield from OTHERS
    if isinstance(value, str):
        yield from _string_variants(value)
    if isinstance(value, int) and not isinstance(value, bool):
        yield from (value - 1, value + 1, -value, value * 100)
    if isinstance(value, list):
        yield tuple(value)
        yield value[:1]
        yield value[:2]
        yield value + value[:1]
        yield list(reversed(value))
        yield value * 2
    if isinstance(value, dict):
        yield {**value, "extra": 1}
        for key in value:
            yield {k: v for k, v in value.items() if k != key}


def _mutants(base: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path in list(_paths(base)):
        for variant in _variants(_get(base, path)):
            doc = copy.deepcopy(base)
            _set(doc, path, copy.deepcopy(variant))
            yield doc
        if isinstance(path[-1], str):  # the key removed
            doc = copy.deepcopy(base)
            del _get(doc, path[:-1])[path[-1]]
            yield doc
            doc = copy.deepcopy(base)  # and an unknown key beside it
            _get(doc, path[:-1])[path[-1] + "_"] = _get(doc, path)
            yield doc


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_fast_path_takes_every_kind(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    record = _agree(BASES[kind], monkeypatch)
    assert record is not None
    assert record.kind == kind
    assert record == Record.parse(record.raw)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_mutation_agrees(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = declined = 0
    for doc in _mutants(BASES[kind]):
        if _agree(doc, monkeypatch) is None:
            declined += 1
        else:
            taken += 1
    assert taken  # both outcomes were exercised
    assert declined


def test_fast_path_takes_the_workloads(monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = set()
    for doc in WORKLOAD:
        record = _agree(doc, monkeypatch)
        assert record is not None
        kinds.add(record.kind)
    assert len(kinds) >= 10  # the benchmark's mix and the artisanal kinds


def test_a_record_of_tuples_is_refused_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = copy.deepcopy(BASES["member.admit"])
    doc["sigs"] = tuple(doc["sigs"])
    assert _agree(doc, monkeypatch) is None
    assert isinstance(_slow(doc, monkeypatch), Exception)


@st.composite
def _mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc = copy.deepcopy(draw(st.sampled_from([*BASES.values(), *WORKLOAD[::25]])))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        current = _get(doc, path)
        action = draw(st.sampled_from(["replace", "text", "delete", "variant"]))
        if action == "delete" and isinstance(path[-1], str):
            del _get(doc, path[:-1])[path[-1]]
        elif action == "text":
            _set(doc, path, draw(st.text(max_size=70)))
        elif action == "variant":
            _set(doc, path, copy.deepcopy(draw(st.sampled_from(list(_variants(current))))))
        else:
            _set(
                doc,
                path,
                draw(
                    st.one_of(
                        st.integers(-(2**54), 2**54),
                        st.booleans(),
                        st.none(),
                        st.text(alphabet=st.sampled_from(CHARS), max_size=12),
                        st.from_regex(r"\A[A-Z]{1,9}-[A-Za-z0-9._-]{0,60}\Z"),
                    )
                ),
            )
    return doc


@settings(max_examples=400, deadline=None)
@given(_mutated())
def test_random_mutations_agree(doc: dict[str, Any]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _agree(doc, monkeypatch)


class _Text(str):
    pass


class _Hs(StrEnum):
    ROUGH = "7102.10"


class _Weight(IntEnum):
    FIVE = 5


@pytest.mark.parametrize(
    ("place", "value"),
    [
        (("body", 1), "an integer key"),
        ((1,), "an integer key"),
        (("body", "value", 2), "an integer key"),
        (("body", "parcel"), _Text("BW-P-1")),
        (("body", "hs"), _Hs.ROUGH),
        (("body", "weight"), _Weight.FIVE),
        (("body", "weight"), 5.0),
    ],
)
def test_python_values_beyond_json_agree(
    place: Path, value: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = copy.deepcopy(BASES["parcel.register"])
    _set(doc, place, value)
    _agree(doc, monkeypatch, exact=not isinstance(value, Enum))


@pytest.mark.parametrize("wrap", [OrderedDict, MappingProxyType])
def test_mappings_agree(wrap: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = copy.deepcopy(BASES["parcel.register"])
    doc["body"] = wrap(doc["body"])
    slow = _slow(doc, monkeypatch)
    fast = record_structs.fast_record(doc, None)
    if fast is not None:
        assert _outcome(fast) == _outcome(slow)
