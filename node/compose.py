"""Composing an officer's records from the node's state.

An officer says what happens ("these two parcels go to the EU under certificate
BW-2026-0007", "split this lot into 40 and 60 carats"); a ``Composer`` reads
what the record needs from the authority's own node over HTTP (weights, values,
HS codes, origin compositions, custodians, the issue record's reference, the
importer's chain head) and builds the record, so nobody ever adds up a total by
hand. The node still judges every record: the composer only spares the typing.

The same composer writes the records of ``kpl demo``, ``kpl import-records``,
the explorer's officer forms and every ``kpl party|parcel|certificate|policy``
command. ``ACTS`` turns officer-level fields (an import row, a form: carats
and US dollars as text, parcels by id) into the composer's calls.

Record ids are ``<chain>-<kind>-<hash>``, the hash taken over the canonical
public body (without the time and the confidential fields): the same act
composed twice gets the same id, so a command re-run after a timeout, or an
import re-run, is idempotent at the node.

One concept, a little over 500 lines: one composer method per officer act,
each reading the node's state that act needs (the artisanal acts are in
``node.compose_artisanal``).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import quote

from kpledger.ledger.canonical import canonical_bytes, sha256
from kpledger.ledger.commit import public_body
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.kpdata import PRODUCERS
from kpledger.ledger.records import FORMAT_VERSION, QUARTER, Kind, seal_record
from kpledger.ledger.rules import certificate_origin

__all__ = [
    "ACTS",
    "Act",
    "Composer",
    "Reader",
    "Row",
    "optional_field",
    "parse_carats",
    "parse_usd",
    "record_id_for",
    "share_values",
]

DEFAULT_VALIDITY_DAYS = 30


class Reader(Protocol):
    """What a composer needs of a node client: JSON reads."""

    def get(self, path: str, **params: Any) -> Any: ...


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hundredths(text: str, what: str, field: str, *, low: int) -> int:
    try:
        value = Decimal(text.replace(",", "").replace("_", ""))
    except InvalidOperation as exc:
        raise InvalidData(f"{text!r} is not a number of {what}", field=field) from exc
    scaled = value * 100
    if scaled != scaled.to_integral_value() or not value.is_finite():
        raise InvalidData(f"{text!r}: {what} have at most two decimals", field=field)
    if scaled < low:
        raise InvalidData(f"{text!r}: at least {Decimal(low) / 100} {what}", field=field)
    return int(scaled)


def _issue_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidData(f"{text!r} is not a date YYYY-MM-DD", field="issued") from exc


def parse_carats(text: str, field: str = "weight") -> int:
    """``"123.45"`` carats -> 12345 hundredths of a carat (exactly; no floats)."""
    return _hundredths(text, "carats", field, low=1)


def parse_usd(text: str, field: str = "value") -> int:
    """``"16,542.30"`` US dollars -> 1654230 cents (exactly; no floats)."""
    return _hundredths(text, "US dollars", field, low=0)


def share_values(total: int, weights: Sequence[int]) -> list[int]:
    """Share ``total`` cents among parts in proportion to their weights, exactly: each
    part gets its floor share, the leftover cents go to the largest remainders."""
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def record_id_for(chain: str, kind: Kind, body: Mapping[str, Any]) -> str:
    """The idempotent id of an act: the same body on the same chain, the same id.

    The id is public and unsalted, so it is taken over the body without its
    confidential fields (``ledger.commit.CONFIDENTIAL``): a hash of a clear
    price or name could be checked against guesses. Two acts that differ only
    in a confidential field get the same id; the second is answered 409.
    """
    public = public_body(kind.value, body)
    digest = sha256(canonical_bytes({"chain": chain, "kind": kind.value, "body": public})).hex()
    return f"{chain}-{kind.value}-{digest[:24]}"


@dataclass
class Composer:
    """Builds records for ``chain`` of network ``network`` from what ``node`` answers."""

    node: Reader
    network: str
    chain: str
    clock: Callable[[], str] = _now

    @classmethod
    def connect(cls, node: Reader, clock: Callable[[], str] = _now) -> Composer:
        """A composer for the chain the node writes, on the network it serves."""
        who = node.get("/v1/whoami")
        chain = who.get("chain")
        if not chain:
            raise InvalidData(f"node {who.get('node')} writes no chain: it takes no records")
        if who.get("role") != "operator":
            raise InvalidData(
                f"the token is a {who.get('role')} token; writing needs {chain}'s operator token",
                field="token",
            )
        network = node.get("/v1/heads")["network"]
        return cls(node, str(network), str(chain), clock)

    # ------------------------------------------------------------ reads
    def parcel(self, parcel_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.node.get(f"/v1/parcels/{quote(parcel_id, safe='')}")
        return found

    def certificate(self, number: str) -> dict[str, Any]:
        found: dict[str, Any] = self.node.get(f"/v1/certificates/{quote(number, safe='')}")
        return found

    def origin(self, code: str, field: str) -> str:
        """``code`` if it can be a rough diamond's origin: an authority of this network
        (in the genesis registry, or admitted since and writing its chain), a producer
        the registry names, or a producing KP participant of 2023 (``kpdata``, say RU
        for a network Russia is not on); else ``InvalidData`` naming ``field``."""
        registry = self.node.get("/v1/registry").get("registry", {})
        known = {str(p.get("code")) for p in registry.get("participants", [])}
        known |= {str(c) for c in self.node.get("/v1/heads").get("heads", {})}
        for codes in registry.get("params", {}).get("producers", {}).values():
            known |= {str(c) for c in codes}
        known = (known | PRODUCERS) - {"KP", "WDC"}
        if code not in known:
            raise InvalidData(
                f"{code} is no origin: neither a participant of this network nor a "
                f"producing KP participant ({', '.join(sorted(known))})",
                field=field,
            )
        return code

    def _held(self, parcel_id: str, field: str) -> dict[str, Any]:
        """A parcel this authority holds, with its custodian and value (operator's view)."""
        p = self.parcel(parcel_id)
        if p["jurisdiction"] != self.chain:
            raise InvalidData(
                f"parcel {parcel_id} is under {p['jurisdiction']}, not {self.chain}", field=field
            )
        if p["status"] != "active":
            raise InvalidData(f"parcel {parcel_id} is {p['status']}", field=field)
        if p.get("value") is None or p.get("custodian") is None:
            raise InvalidData(
                f"the node does not show parcel {parcel_id}'s custodian and value to this token",
                field="token",
            )
        return p

    # ------------------------------------------------------------ records
    def record(self, kind: Kind, body: dict[str, Any], record_id: str | None = None) -> Any:
        """The record to submit as JSON (confidential fields in clear: the node commits
        them), with the idempotent id unless one is given."""
        draft = {
            "v": FORMAT_VERSION,
            "network": self.network,
            "chain": self.chain,
            "kind": kind.value,
            "id": record_id or record_id_for(self.chain, kind, body),
            "time": self.clock(),
            "body": body,
        }
        seal_record(draft)  # refuses what the node would refuse as malformed
        return draft

    def new_party_id(self) -> str:
        """A new party id of this chain: random base32, so it carries no name (the name
        is a committed field of ``party.register``)."""
        return f"{self.chain}-{base64.b32encode(secrets.token_bytes(5)).decode()}"

    def party_register(self, party: str, name: str, role: str, address: str) -> dict[str, Any]:
        return {"party": party, "name": name, "role": role, "address": address}

    def party_revoke(self, party: str, reason: str) -> dict[str, Any]:
        return {"party": party, "reason": reason}

    def parcel_register(
        self,
        parcel: str,
        custodian: str,
        weight: int,
        value: int,
        *,
        mine: str,
        hs: str = "7102.10",
        produced: str | None = None,
    ) -> dict[str, Any]:
        return {
            "parcel": parcel,
            "custodian": custodian,
            "weight": weight,
            "value": value,
            "hs": hs,
            "mine": mine,
            "produced": produced or self.clock()[:10],
        }

    def parcel_transfer(self, parcel: str, to: str, value: int | None = None) -> dict[str, Any]:
        self._held(parcel, "parcel")
        body: dict[str, Any] = {"parcel": parcel, "to": to}
        if value is not None:
            body["value"] = value
        return body

    def parcel_split(
        self,
        parcel: str,
        parts: Sequence[tuple[str, int | None]],
        custodians: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Children by weight; at most one part without a weight takes the rest. Values
        are shared in proportion to the weights, exactly (largest remainder)."""
        p = self._held(parcel, "parcel")
        if len(parts) < 2:
            raise InvalidData("a split makes at least two parcels", field="into")
        open_parts = [i for i, (_, w) in enumerate(parts) if w is None]
        if len(open_parts) > 1:
            raise InvalidData("only one part may leave its weight to the rest", field="into")
        given = sum(w for _, w in parts if w is not None)
        rest = int(p["weight"]) - given
        weights = [rest if w is None else w for _, w in parts]
        if open_parts and rest < 1:
            raise InvalidData(
                f"the weighed parts already reach {given} of the parcel's {p['weight']} "
                "hundredths of a carat",
                field="into",
            )
        if sum(weights) != int(p["weight"]):
            raise InvalidData(
                f"the parts weigh {sum(weights)} hundredths of a carat, parcel {parcel} "
                f"weighs {p['weight']}: leave one part's weight out to take the rest",
                field="into",
            )
        values = share_values(int(p["value"]), weights)
        children = []
        for (child, _), weight, value in zip(parts, weights, values, strict=True):
            entry: dict[str, Any] = {"parcel": child, "weight": weight, "value": value}
            if custodians and child in custodians:
                entry["custodian"] = custodians[child]
            children.append(entry)
        return {"parcel": parcel, "children": children}

    def parcel_merge(
        self, parents: Sequence[str], child: str, custodian: str | None = None
    ) -> dict[str, Any]:
        """Weights and values summed from the ledger; the custodian is the parents' own."""
        held = [self._held(p, f"parent[{i}]") for i, p in enumerate(parents)]
        holders = sorted({str(p["custodian"]) for p in held})
        if len(holders) != 1:
            raise InvalidData(
                f"the parcels are held by {', '.join(holders)}: a merge takes one "
                "custodian's parcels; transfer them first",
                field="parents",
            )
        return {
            "parents": list(parents),
            "parcel": child,
            "custodian": custodian or holders[0],
            "weight": sum(int(p["weight"]) for p in held),
            "value": sum(int(p["value"]) for p in held),
        }

    def certificate_issue(  # noqa: PLR0913 - one keyword per field of the certificate
        self,
        number: str,
        parcels: Sequence[str],
        destination: str,
        importer_name: str,
        importer_address: str,
        *,
        exporter: str | None = None,
        issued: str | None = None,
        days: int = DEFAULT_VALIDITY_DAYS,
        seal: str | None = None,
    ) -> dict[str, Any]:
        """Annex I fields from the ledger: lines, totals, origin, exporter."""
        if not parcels:
            raise InvalidData("a certificate carries at least one parcel", field="parcel")
        day = _issue_day(issued) if issued else date.fromisoformat(self.clock()[:10])
        held = [self._held(p, f"parcel[{i}]") for i, p in enumerate(parcels)]
        holders = sorted({str(p["custodian"]) for p in held})
        chosen = exporter or (holders[0] if len(holders) == 1 else None)
        if chosen is None:
            raise InvalidData(
                f"the parcels are held by {', '.join(holders)}: one exporter holds a "
                "certificate's parcels",
                field="parcel",
            )
        lines = [
            {
                "parcel": p["id"],
                "weight": int(p["weight"]),
                "value": int(p["value"]),
                "hs": p["hs"],
                "origin": {c: int(q) for c, q in p["origin"].items()},
            }
            for p in held
        ]
        return {
            "number": number,
            "destination": destination,
            "exporter": chosen,
            "importer": {"name": importer_name, "address": importer_address},
            "lines": lines,
            "carats": sum(x["weight"] for x in lines),
            "value": sum(x["value"] for x in lines),
            "parcels": len(lines),
            "origin": certificate_origin([tuple(sorted(x["origin"].items())) for x in lines]),
            "issued": day.isoformat(),
            "expires": (day + timedelta(days=days)).isoformat(),
            "seal": seal or f"SEAL-{number}",
        }

    def _incoming(self, number: str) -> dict[str, Any]:
        cert = self.certificate(number)
        if cert["destination"] != self.chain:
            raise InvalidData(
                f"certificate {number} is for {cert['destination']}, not {self.chain}",
                field="number",
            )
        return cert

    @staticmethod
    def _ref(cert: Mapping[str, Any]) -> dict[str, Any]:
        issue = cert["issue"]
        return {"chain": issue["chain"], "index": issue["index"], "hash": issue["hash"]}

    def certificate_confirm(
        self, number: str, custodian: str, received: Mapping[str, int] | None = None
    ) -> dict[str, Any]:
        """Received weights default to the declared ones; give those the scale showed."""
        cert = self._incoming(number)
        unknown = sorted(set(received or {}) - set(cert["parcels"]))
        if unknown:
            raise InvalidData(
                f"{', '.join(unknown)} is not on certificate {number}", field="received"
            )
        lines = []
        for pid in cert["parcels"]:
            weight = (received or {}).get(pid)
            if weight is None:
                weight = int(self.parcel(pid)["weight"])
            lines.append({"parcel": pid, "weight": weight})
        return {
            "number": number,
            "ref": self._ref(cert),
            "custodian": custodian,
            "received": lines,
        }

    def certificate_refuse(self, number: str, code: str, reason: str) -> dict[str, Any]:
        cert = self._incoming(number)
        return {"number": number, "ref": self._ref(cert), "code": code, "reason": reason}

    def certificate_void(self, number: str, reason: str) -> dict[str, Any]:
        """Cites the importer's chain head, which must be dated past the expiry."""
        cert = self.certificate(number)
        dest = str(cert["destination"])
        head = self.node.get("/v1/heads")["heads"].get(dest)
        if head is None or str(head["time"])[:10] <= str(cert["expires"]):
            seen = "no block" if head is None else f"its head dated {head['time']}"
            raise InvalidData(
                f"{number} expires {cert['expires']}; this node holds {seen} of {dest}'s "
                "chain: a void needs a block of the importer's chain dated after the expiry",
                field="number",
            )
        return {"number": number, "reason": reason, "importer_height": int(head["height"])}

    def parcel_release(self, parcel: str, reason: str) -> dict[str, Any]:
        return {"parcel": parcel, "reason": reason}

    def stats_report(self, quarter: str) -> dict[str, Any]:
        """The body of this authority's ``stats.report`` for ``quarter``: the node
        composes it from the chain's records and the disclosures it holds (its
        production, its exports and imports by partner, carats and USD; a cell of
        fewer than the network's ``min_cell`` records without USD). Its record id
        is ``stats-<quarter>``: a quarter is reported once."""
        if QUARTER.match(quarter) is None:
            raise InvalidData("a quarter is written 2026-Q1", field="quarter")
        draft = self.node.get("/v1/officer/stats-report", quarter=quarter)
        body: dict[str, Any] = draft["record"]["body"]
        return body

    def policy_origin(self, origin: str, reason: str) -> dict[str, Any]:
        return {"origin": origin, "reason": reason}


# ---------------------------------------------------------------- acts from fields

Row = Mapping[str, Any]


def _text(row: Row, name: str, *, default: str | None = None) -> str:
    value = row.get(name)
    if value is None or value == "":
        if default is not None:
            return default
        raise InvalidData("missing", field=name)
    if not isinstance(value, str | int):
        raise InvalidData("expected text", field=name)
    return str(value)


def optional_field(row: Row, name: str) -> str | None:
    value = row.get(name)
    return None if value is None or value == "" else _text(row, name)


def _list(row: Row, name: str) -> list[str]:
    """A list column: a JSON array, or text separated by ``;`` (CSV)."""
    value = row.get(name)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    items = [v.strip() for v in _text(row, name).split(";") if v.strip()]
    if not items:
        raise InvalidData("expected one or more ids separated by ;", field=name)
    return items


@dataclass(frozen=True)
class Act:
    """How officer-level fields (a form, an import row) become a record of one kind:
    its fields, its key (what the record creates or acts on), its body."""

    kind: Kind
    columns: str
    key: Callable[[Row], str]
    body: Callable[[Composer, Row], dict[str, Any]]


ACTS: dict[str, Act] = {
    k.kind.value: k
    for k in (
        Act(
            Kind.PARTY_REGISTER,
            "party, name, role, address",
            lambda r: _text(r, "party"),
            lambda c, r: c.party_register(
                _text(r, "party"), _text(r, "name"), _text(r, "role"), _text(r, "address")
            ),
        ),
        Act(
            Kind.PARCEL_REGISTER,
            "parcel, custodian, carats, usd, mine, hs (7102.10), produced (today)",
            lambda r: _text(r, "parcel"),
            lambda c, r: c.parcel_register(
                _text(r, "parcel"),
                _text(r, "custodian"),
                parse_carats(_text(r, "carats"), "carats"),
                parse_usd(_text(r, "usd"), "usd"),
                mine=_text(r, "mine"),
                hs=_text(r, "hs", default="7102.10"),
                produced=optional_field(r, "produced"),
            ),
        ),
        Act(
            Kind.PARCEL_TRANSFER,
            "parcel, to, usd (unchanged)",
            lambda r: f"{_text(r, 'parcel')}>{_text(r, 'to')}",
            lambda c, r: c.parcel_transfer(
                _text(r, "parcel"),
                _text(r, "to"),
                None if optional_field(r, "usd") is None else parse_usd(_text(r, "usd"), "usd"),
            ),
        ),
        Act(
            Kind.CERTIFICATE_ISSUE,
            "number, parcels (;-separated), destination, importer, importer_address, "
            "exporter (the custodian), issued (today), days (30), seal",
            lambda r: _text(r, "number"),
            lambda c, r: c.certificate_issue(
                _text(r, "number"),
                _list(r, "parcels"),
                _text(r, "destination"),
                _text(r, "importer"),
                _text(r, "importer_address"),
                exporter=optional_field(r, "exporter"),
                issued=optional_field(r, "issued"),
                days=_days(r),
                seal=optional_field(r, "seal"),
            ),
        ),
        Act(
            Kind.CERTIFICATE_CONFIRM,
            "number, custodian",
            lambda r: _text(r, "number"),
            lambda c, r: c.certificate_confirm(_text(r, "number"), _text(r, "custodian")),
        ),
        Act(
            Kind.CERTIFICATE_REFUSE,
            "number, code, reason",
            lambda r: _text(r, "number"),
            lambda c, r: c.certificate_refuse(
                _text(r, "number"), _text(r, "code"), _text(r, "reason")
            ),
        ),
    )
}


def _days(row: Row) -> int:
    text = _text(row, "days", default="30")
    if not text.isdigit() or not 0 <= int(text) <= 3660:
        raise InvalidData("expected a whole number of days", field="days")
    return int(text)
