"""A node's persistent store: the logs of every chain and the state they imply.

``Store`` is the facade a node and the API hold. It owns the engine, is
itself the ``StateView`` the pure rules read (``ledger.store.stateview``),
and exposes one collaborator per job, each in its own module with its SQL:

* ``store.writer``   appends blocks atomically (``apply``, ``commit``);
* ``store.queue``    the submission queue and outcomes of submitted records;
* ``store.disclosures`` clear values and salts of committed fields this node holds;
* ``store.log``      stored blocks, records and signed headers;
* ``store.proofs``   RFC 9162 inclusion and consistency proofs, roots;
* ``store.lineage``  edges of splits and merges, records of parcels;
* ``store.search``   parcel ids and certificate numbers by prefix;
* ``store.evidence`` evidence of equivocation;
* ``store.resume``   drops an equivocating chain's old blocks when a key.replace restarts it;
* ``store.audit``    the auditors' queries (report findings, KP statistics);
* ``store.verifier`` the self-check that replays the log.
"""

from __future__ import annotations

from sqlalchemy import Engine

from kpledger.ledger.registry import Registry
from kpledger.ledger.store.apply import BlockWriter
from kpledger.ledger.store.audit import AuditQueries
from kpledger.ledger.store.disclosures import DisclosureStore
from kpledger.ledger.store.engine import BulkWriter, open_database
from kpledger.ledger.store.evidence import EvidenceLog
from kpledger.ledger.store.lineage import Lineage
from kpledger.ledger.store.log import LogReader
from kpledger.ledger.store.proofs import Proofs
from kpledger.ledger.store.queue import SubmissionQueue
from kpledger.ledger.store.resume import ChainResume
from kpledger.ledger.store.search import PrefixSearch
from kpledger.ledger.store.stateview import StoreState
from kpledger.ledger.store.verify import Verifier

__all__ = ["Store"]


class Store(StoreState):
    """Logs and derived state in SQL: a ``StateView`` with one collaborator per job."""

    #: a read replica (``ledger.store.writer.ReplicaStore``) refuses every write
    READ_ONLY = False

    def __init__(self, engine: Engine, registry: Registry) -> None:
        super().__init__(engine, registry)
        #: the batch inserts of every write (COPY on PostgreSQL; ``BulkWriter``)
        self.bulk = BulkWriter(engine)
        self.disclosures = DisclosureStore(
            engine, read_only=self.READ_ONLY, bulk=self.bulk, recent=self.recent_record
        )
        self.queue = SubmissionQueue(engine, self.bulk, self.disclosures, read_only=self.READ_ONLY)
        self.writer = BlockWriter(self, self.queue, self.bulk, read_only=self.READ_ONLY)
        self.log = LogReader(self)
        self.proofs = Proofs(engine)
        self.lineage = Lineage(engine)
        self.search = PrefixSearch(engine)
        self.evidence = EvidenceLog(engine, read_only=self.READ_ONLY)
        self.resume = ChainResume(self, read_only=self.READ_ONLY)
        self.audit = AuditQueries(engine, registry.params)
        self.verifier = Verifier(self)

    @classmethod
    def open(cls, url: str, registry: Registry | None = None, *, create: bool = True) -> Store:
        """Open (and on first use initialise) the store at ``url``.

        Refuses a schema revision this code does not know, and a store that
        belongs to another network than ``registry``.
        """
        engine, on_disk = open_database(url, registry, create=create)
        return cls(engine, on_disk)

    def close(self) -> None:
        self.engine.dispose()
