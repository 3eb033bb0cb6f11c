"""Who may see a record's confidential fields (DOMAIN rule 10, DESIGN.md section 9).

A node gives another node (a peer, by its identity) the disclosures of a
record only when ``entitled`` says so:

* the writing authority: its own chain's records (it holds them anyway);
* auditors named in the registry: every record;
* the counterpart authority of a certificate: the ``certificate.issue``
  naming it as destination (importer name and address, each line's value,
  the total, the seal: what it needs to assess the shipment), and the
  ``party.register`` of that certificate's exporter (Annex I prints the
  exporter's name and address). A parcel in transit is worth what its line
  declares (``ledger.rules``), so the importer needs no record of the
  parcels' earlier lineage to know the value of what it received: their
  prices on the exporter's side stay the exporter's;
* nobody else: another government sees weights, origins, ids and statuses.

A party's own view (its parcels, with a party token) is the API's business,
over what its authority's node holds.
"""

from __future__ import annotations

from collections.abc import Callable

from kpledger.ledger.records import CertificateIssue, PartyRegister, Record

__all__ = ["entitled"]


def entitled(
    reader: str,
    role: str | None,
    record: Record,
    exports_to_reader: Callable[[str], bool],
) -> bool:
    """Whether participant ``reader`` (registry role ``role``) may see ``record``'s
    confidential fields; ``exports_to_reader(party)`` says whether ``party`` is the
    exporter of a certificate destined to ``reader``."""
    if reader == record.chain or role == "auditor":
        return True
    body = record.body
    if isinstance(body, CertificateIssue):
        return body.destination == reader
    if isinstance(body, PartyRegister):
        return exports_to_reader(body.party)
    return False
