"""The public names of every module of the shipped packages, pinned.

Each module declares its public names in ``__all__``; this test pins them (as
httpx's ``tests/test_exported_members.py`` does for its package), so adding,
renaming or removing a public name is a visible change of this file. It also
checks that every module has an ``__all__``, that each listed name exists and
is not private, and that no module of the shipped packages imports a private
name (``_x``) from another module.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "keys", "node", "api", "cli")
#: the import package the folders install under (``kpledger.ledger``, ...)
TOP = "kpledger"


def _local(module: str) -> str:
    """``kpledger.ledger.x`` -> ``ledger.x``; other names unchanged."""
    return module.removeprefix(f"{TOP}.")


PINNED: dict[str, list[str]] = {
    "api": [],
    "api.app": ["create_app"],
    "api.audit": [
        "MAX_FINDINGS",
        "PERIOD_PATTERN",
        "PRICE_GROUP_FACTOR",
        "PRICE_GROUP_MIN",
        "PRICE_REFERENCE_FACTOR",
        "Period",
        "RECORDS_PER_FINDING",
        "UNCONFIRMED_DAYS",
        "audit_report",
        "kp_statistics",
        "parse_period",
        "stats_csv",
    ],
    "api.deps": ["BodyLimit", "Caller", "NodeDep", "caller", "require"],
    "api.docs_records": ["EXAMPLES", "EXAMPLE_TIME", "NETWORK", "example_record", "render"],
    "api.limits": [
        "BodyTimeout",
        "RateLimitedLog",
        "connection_budget",
        "guarded_protocol",
        "install_log_limits",
    ],
    "api.middleware": ["NoSniff"],
    "api.openapi": ["OPERATION_IDS", "add_record_schemas", "component_name", "operation_id"],
    "api.problems": ["PROBLEM_BASE", "install", "problem"],
    "api.provenance": ["certificate_view", "history_view", "parcel_view", "reveal", "shares"],
    "api.routes": [],
    "api.routes.audit": ["router"],
    "api.routes.bundles": ["accepts_gzip", "router"],
    "api.routes.certificates": ["router"],
    "api.routes.checks": ["router"],
    "api.routes.governance": ["router"],
    "api.routes.officer": ["router"],
    "api.routes.ops": ["router"],
    "api.routes.parcels": ["router"],
    "api.routes.peers": ["router"],
    "api.routes.records": ["router"],
    "api.routes.search": ["router"],
    "api.routes.stats": ["router"],
    "api.routes.web": ["PAGES", "router"],
    "api.schemas": [
        "AuditRecordOut",
        "AuditReportOut",
        "AuditThresholdsOut",
        "BlocksOut",
        "CertificateCountRow",
        "CertificateOut",
        "DiscrepancyList",
        "DiscrepancyOut",
        "EdgeOut",
        "EquivocationList",
        "EquivocationOut",
        "EventOut",
        "EvidenceListOut",
        "ExportRow",
        "GossipOut",
        "HeadOut",
        "HeaderRefOut",
        "HeadsOut",
        "HealthOut",
        "HistoryOut",
        "ImportRow",
        "InTransitList",
        "InTransitOut",
        "MirrorList",
        "MirrorOut",
        "OutcomeOut",
        "ParcelOut",
        "PriceOutlierList",
        "PriceOutlierOut",
        "ProblemOut",
        "ProductionRow",
        "ProofOut",
        "RefOut",
        "SearchOut",
        "StatsOut",
        "StatsTotals",
        "SubmitOut",
        "SuspendedActivityList",
        "SuspendedActivityOut",
        "UnconfirmedList",
        "UnconfirmedOut",
        "UnrecordedProductionList",
        "UnrecordedProductionOut",
    ],
    "api.server": ["NodeProcess", "open_node", "run_node"],
    "cli": [],
    "cli.certificate": ["ProofAnchor", "check_certificate_proof", "verify_certificate_command"],
    "cli.demo": [
        "AUTHORITIES",
        "Call",
        "DEMO_STORY",
        "DemoResult",
        "Step",
        "Story",
        "admit_participant",
        "check",
        "play",
        "run_story",
        "step",
        "trade_and_suspend",
        "wait_agreement",
    ],
    "cli.example": ["ExampleResult", "run_example"],
    "cli.exits": ["EXIT_HELP", "Exit", "print_json", "status_exit"],
    "cli.governance": ["app", "load_proposal", "load_registry", "sign_proposal", "submit_proposal"],
    "cli.importer": ["import_records", "read_rows"],
    "cli.join": ["connect_local", "network_add_peer", "network_join"],
    "cli.keyops": ["keys_rotate", "rotate_key"],
    "cli.main": ["app"],
    "cli.officer": ["party_app", "policy_app", "run_acts", "settle"],
    "cli.ops": ["app", "export", "import_"],
    "cli.query": [
        "JsonOpt",
        "audit",
        "certificate_app",
        "connect",
        "parcel_app",
        "session",
        "stats",
    ],
    "cli.render": ["STATUS_WORDS", "carats", "history_tree", "ref", "status_text"],
    "cli.spec_vectors": ["Case", "cases", "main", "write"],
    "cli.verify": ["verify_command"],
    "keys": [
        "generate_key_file",
        "load_key",
        "load_public_key",
        "passphrase_from_env",
        "read_passphrase",
        "save_key",
        "write_public_key",
    ],
    "keys.keyfile": [
        "generate_key_file",
        "load_key",
        "load_public_key",
        "passphrase_from_env",
        "read_passphrase",
        "save_key",
        "write_public_key",
    ],
    "ledger": [],
    "ledger.blocks": [
        "Block",
        "Evidence",
        "Header",
        "SignedHeader",
        "WitnessRef",
        "check_link",
        "seal",
    ],
    "ledger.bundle": [
        "Bundle",
        "BundleRecord",
        "BundleResult",
        "FORMAT",
        "MAX_BUNDLE_BYTES",
        "MAX_HEADERS",
        "MAX_PROOF",
        "MAX_RECORDS",
        "STEPS",
        "Source",
        "Verdict",
        "assemble_bundle",
        "check_bundle",
        "parse_bundle",
        "serialize_bundle",
        "verify_bundle",
    ],
    "ledger.canonical": [
        "Tag",
        "canonical_bytes",
        "from_hex",
        "load_json",
        "parse_canonical",
        "sha256",
        "tagged_hash",
        "to_hex",
    ],
    "ledger.certcode": ["CertificateCode", "check_base_url"],
    "ledger.chain": [
        "MemoryLedger",
        "Proposal",
        "apply_block",
        "detect_equivocation",
        "effective_witness",
        "fork_heights",
        "fork_sizes",
        "genesis",
        "propose",
        "resolve_witness",
    ],
    "ledger.commit": [
        "COMMIT_PREFIX",
        "CONFIDENTIAL",
        "Commitment",
        "Disclosure",
        "Opening",
        "SALT_BYTES",
        "commit",
        "confidential_paths",
        "field_at",
        "keyed_salts",
        "open_body",
        "public_body",
        "random_salt",
        "seal_body",
    ],
    "ledger.crypto": ["Ed25519Signer", "PublicKey", "Signer", "key_id_of"],
    "ledger.disclosed": ["Clear", "DISCLOSURE_RULES", "check_disclosed", "undecided"],
    "ledger.entitle": ["entitled"],
    "ledger.errors": [
        "AlreadySpent",
        "BlockError",
        "CertificateInvalid",
        "ConfirmationInvalid",
        "ConsistencyProofError",
        "CustodyConflict",
        "DependencyMissing",
        "DisclosureError",
        "DuplicateRecord",
        "EncodingError",
        "EquivocationError",
        "FutureDated",
        "GovernanceInvalid",
        "InactiveParty",
        "InclusionProofError",
        "InvalidData",
        "KeyChangeInvalid",
        "KeyFileError",
        "LedgerError",
        "MassNotConserved",
        "NotCosigned",
        "NotYetCosigned",
        "OriginNotCarried",
        "ParticipantNotActive",
        "ProofError",
        "RecordConflict",
        "RefusalInvalid",
        "ReleaseInvalid",
        "RestrictedOrigin",
        "RuleViolation",
        "SchemaError",
        "SignatureError",
        "StoreError",
        "ThresholdError",
        "UnknownReference",
        "ValueNotConserved",
        "VersionError",
        "VoidInvalid",
        "WitnessInvalid",
        "WrongJurisdiction",
    ],
    "ledger.kpdata": ["PARTICIPANT_NAMES", "PRODUCERS", "PRODUCTION_2023", "usd_per_carat"],
    "ledger.merkle": [
        "Coord",
        "EMPTY_ROOT",
        "Frontier",
        "HASH_SIZE",
        "MemoryTree",
        "NewNode",
        "NodeReader",
        "consistency_proof",
        "inclusion_proof",
        "leaf_hash",
        "node_hash",
        "root_at",
        "root_from_consistency_proof",
        "root_from_inclusion_proof",
        "root_of",
        "subtree_coords_for_consistency",
        "subtree_coords_for_inclusion",
        "subtree_coords_for_root",
        "verify_consistency",
        "verify_inclusion",
    ],
    "ledger.record_schema": ["KIND_DOCS", "body_schema", "kind_schemas", "record_schema"],
    "ledger.records": [
        "BODY_PARSERS",
        "Body",
        "CertificateConfirm",
        "CertificateIssue",
        "CertificateRefuse",
        "CertificateVoid",
        "Child",
        "Composition",
        "ConfirmLine",
        "FORMAT_VERSION",
        "GOVERNANCE_CHAIN",
        "GOVERNANCE_KINDS",
        "KeyReplace",
        "KeyRotate",
        "Kind",
        "Line",
        "MemberAdmit",
        "MemberChange",
        "ParcelMerge",
        "ParcelRegister",
        "ParcelRelease",
        "ParcelSplit",
        "ParcelTransfer",
        "PartyRegister",
        "PartyRevoke",
        "PolicyOrigin",
        "REFUSAL_CODES",
        "Record",
        "RecordRef",
        "RecordSig",
        "make_record",
        "seal_record",
    ],
    "ledger.registry": ["Params", "Participant", "Registry", "SignatureSet", "verify_threshold"],
    "ledger.rules": [
        "Context",
        "allocate_origin",
        "apply_record",
        "certificate_origin",
        "witnessed_median_time",
    ],
    "ledger.schema": [
        "CARAT_MAX",
        "CENTS_MAX",
        "CODE",
        "DATE",
        "FORBIDDEN_CHARACTERS",
        "Fields",
        "HS_CODES",
        "LOCAL_ID",
        "RECORD_ID",
        "TIME",
        "parse_date",
        "parse_time",
    ],
    "ledger.state": [
        "Certificate",
        "CertificateStatus",
        "Edge",
        "KeyEvent",
        "MemberEvent",
        "Parcel",
        "ParcelEvent",
        "ParcelStatus",
        "Party",
        "State",
        "StateView",
        "chains_of",
    ],
    "ledger.store": ["Store", "VerifyReport", "make_engine", "schema_revision", "upgrade"],
    "ledger.store.apply": ["BlockWriter"],
    "ledger.store.audit": [
        "AuditQueries",
        "AuditRecord",
        "Bounded",
        "CertificateCount",
        "Discrepancy",
        "Equivocation",
        "ExportTotal",
        "Findings",
        "ImportTotal",
        "InTransit",
        "MAX_FINDINGS",
        "MirrorMismatch",
        "PERIOD_PATTERN",
        "PRICE_GROUP_FACTOR",
        "PRICE_GROUP_MIN",
        "PRICE_REFERENCE_FACTOR",
        "Period",
        "PriceOutlier",
        "ProductionTotal",
        "RECORDS_PER_FINDING",
        "Refusal",
        "Statistics",
        "SuspendedActivity",
        "UNCONFIRMED_DAYS",
        "Unconfirmed",
        "UnrecordedProduction",
        "parse_period",
    ],
    "ledger.store.audit.activity": [
        "equivocation",
        "governance_record",
        "suspended_activity",
        "unrecorded_production",
    ],
    "ledger.store.audit.base": [
        "C",
        "CLOSED_BY_IMPORTER",
        "H",
        "ISSUED",
        "MAX_FINDINGS",
        "NOT_SHIPPED",
        "PERIOD_PATTERN",
        "PRICE_GROUP_FACTOR",
        "PRICE_GROUP_MIN",
        "PRICE_REFERENCE_FACTOR",
        "Period",
        "R",
        "RECORDS_PER_FINDING",
        "REFUSED",
        "RecordResolver",
        "RefKey",
        "UNCONFIRMED_DAYS",
        "VOIDED",
        "as_int",
        "cents_of",
        "closed_time",
        "known_cents",
        "minus_days",
        "parse_period",
    ],
    "ledger.store.audit.certificates": [
        "discrepancies",
        "in_transit",
        "in_transit_now",
        "mirror",
        "mirror_records",
        "refusals",
        "unconfirmed",
    ],
    "ledger.store.audit.prices": ["Priced", "off_by", "price_outliers", "priced"],
    "ledger.store.audit.rows": [
        "AuditRecord",
        "Bounded",
        "CertificateCount",
        "Discrepancy",
        "Equivocation",
        "ExportTotal",
        "Findings",
        "ImportTotal",
        "InTransit",
        "MirrorMismatch",
        "PriceOutlier",
        "ProductionTotal",
        "Refusal",
        "Statistics",
        "SuspendedActivity",
        "Unconfirmed",
        "UnrecordedProduction",
    ],
    "ledger.store.audit.statistics": ["certificate_counts", "exports", "imports", "production"],
    "ledger.store.backup": [
        "BackupError",
        "BackupSummary",
        "FORMAT",
        "ImportReport",
        "check_file",
        "export_store",
        "import_file",
    ],
    "ledger.store.bundles": ["build_bundle"],
    "ledger.store.disclosures": ["DisclosureStore", "Held"],
    "ledger.store.engine": [
        "BulkWriter",
        "make_engine",
        "open_database",
        "schema_revision",
        "upgrade",
    ],
    "ledger.store.evidence": ["EvidenceLog"],
    "ledger.store.lineage": ["History", "HistoryEvent", "Lineage"],
    "ledger.store.log": ["LogReader", "heights_at"],
    "ledger.store.outcome": ["Outcome", "OutcomeStatus"],
    "ledger.store.proofs": ["NodeReader", "Proofs"],
    "ledger.store.queue": ["SubmissionQueue"],
    "ledger.store.rows": [
        "IN_CHUNK",
        "cert_of",
        "cert_row",
        "chunks",
        "header_of",
        "origin_text",
        "parcel_of",
        "parcel_row",
        "party_of",
        "party_row",
        "ref_of",
        "referenced",
        "rejection_row",
    ],
    "ledger.store.search": ["MAX_SUGGESTIONS", "PrefixSearch", "Suggestions", "like_prefix"],
    "ledger.store.stateview": ["StoreState"],
    "ledger.store.store": ["Store"],
    "ledger.store.tables": [
        "SCHEMA_REVISION",
        "certificates",
        "confirmations",
        "disclosure_findings",
        "disclosures",
        "edges",
        "evidence",
        "headers",
        "keys",
        "members",
        "merkle_nodes",
        "meta",
        "metadata",
        "parcel_events",
        "parcels",
        "parties",
        "pending",
        "records",
        "rejected",
        "restrictions",
    ],
    "ledger.store.verify": ["DERIVED", "Verifier", "VerifyReport", "snapshot"],
    "ledger.store.writer": ["ReplicaStore", "WriterLock", "writer_key"],
    "ledger.workload": ["NAMES", "Network", "PRICE_PER_CARAT", "Scenario", "realistic_blocks"],
    "node": [],
    "node.client": ["ClientError", "NodeClient"],
    "node.compose": [
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
    ],
    "node.config": [
        "ConfigError",
        "HttpLimits",
        "NodeConfig",
        "PeerConfig",
        "TlsConfig",
        "TokenConfig",
        "dump_config",
        "edit_config",
        "hash_token",
        "write_config",
    ],
    "node.disclose": [
        "MAX_DISCLOSURES",
        "Sealer",
        "disclosures_json",
        "pull_disclosures",
        "receive_disclosures",
    ],
    "node.gossip": ["Gossip", "MAX_BODY", "PeerState"],
    "node.keyring": ["KeyRing", "key_files", "next_key_file", "retired_key_file"],
    "node.local": [
        "LocalNetwork",
        "NodeProcess",
        "NodeStartError",
        "SOURCE_ROOT",
        "free_base_port",
        "log_tail",
        "stop_all",
    ],
    "node.membership": ["ConfigWatch", "JoinLayout", "add_peer", "join_network"],
    "node.network": [
        "NetworkLayout",
        "db_service",
        "init_network",
        "issue_node_certificate",
        "load_ca",
        "node_config_doc",
        "service_name",
    ],
    "node.node": [
        "CLOCK_TOLERANCE",
        "MAX_BLOCKS_BODY",
        "Node",
        "NotSealer",
        "ReceiveResult",
        "utc_now",
    ],
    "node.runtime": ["peer_height", "produce", "run_loops", "startup_sync"],
}


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:  # alembic's scripts, loaded by alembic, not imported
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_is_pinned() -> None:
    assert sorted(_modules()) == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_public_names(name: str) -> None:
    module = importlib.import_module(f"{TOP}.{name}")
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert sorted(exported) == PINNED[name], f"{name}: public names changed"
    assert len(set(exported)) == len(exported), f"{name}: __all__ repeats a name"
    for member in exported:
        assert not member.startswith("_"), f"{name} exports the private name {member}"
        assert hasattr(module, member), f"{name}.__all__ names {member}, which it lacks"


def _imported_modules(tree: ast.Module) -> set[str]:
    """Local names bound to modules of the shipped packages (``from cli import query``)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _local(alias.name).split(".")[0] in PACKAGES and alias.asname:
                    bound.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and _local(node.module or "") in PACKAGES:
            bound.update(alias.asname or alias.name for alias in node.names)
    return bound


@pytest.mark.parametrize("name", sorted(PINNED))
def test_no_private_name_used_from_another_module(name: str) -> None:
    module = importlib.import_module(f"{TOP}.{name}")
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    private = [
        f"from {node.module} import {alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and _local(node.module).split(".")[0] in PACKAGES
        for alias in node.names
        if alias.name.startswith("_")
    ]
    modules = _imported_modules(tree)
    private += [
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in modules
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]
    assert not private, f"{name} uses private names of other modules: {private}"


def test_no_module_imports_the_folders_by_their_bare_names() -> None:
    """Every import names ``kpledger.``: a bare ``ledger.x`` would load a second copy of
    the module from the checkout (two error trees, two registries)."""
    bare = []
    for folder in (*PACKAGES, "bench", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom) and node.level == 0
                    else []
                )
                bare += [
                    f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in PACKAGES
                ]
    assert not bare, bare[:10]
