"""Tests of ledger.registry: the signed genesis registry and threshold signatures."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpledger.ledger.canonical import Tag, canonical_bytes, parse_canonical, tagged_hash
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData, SchemaError, SignatureError, ThresholdError
from kpledger.ledger.registry import Params, Participant, Registry, verify_threshold

CREATED = "2026-01-01T00:00:00Z"


def _signer(label: str) -> Ed25519Signer:
    return Ed25519Signer.from_seed(label.encode().ljust(32, b"."))


GOV = [_signer(f"gov-{i}") for i in range(3)]
OUTSIDER = _signer("outsider")
BW, EU, WDC = _signer("BW"), _signer("EU"), _signer("WDC")
PARTICIPANTS = [
    Participant("BW", "Botswana", "authority", "https://bw.example", BW.public),
    Participant("EU", "European Union", "authority", "https://eu.example", EU.public),
    Participant("WDC", "World Diamond Council", "auditor", "https://wdc.example", WDC.public),
]


def make(**changes: Any) -> Registry:
    args: dict[str, Any] = {
        "name": "kp-test",
        "created": CREATED,
        "participants": PARTICIPANTS,
        "governance": GOV[:2],
        "threshold": 2,
    }
    args.update(changes)
    return Registry.create(**args)


def outer(registry: Registry) -> dict[str, Any]:
    value: dict[str, Any] = parse_canonical(registry.to_bytes())
    return value


def resign(body: dict[str, Any], signers: list[Ed25519Signer]) -> bytes:
    body_bytes = canonical_bytes(body)
    sigs = [
        {"key_id": s.public.key_id, "sig": s.sign(Tag.SIG_REGISTRY, body_bytes).hex()}
        for s in signers
    ]
    return canonical_bytes({"registry": body, "sigs": sigs})


# --------------------------------------------------------------------------- round trip


def test_create_parse_round_trip() -> None:
    registry = make()
    data = registry.to_bytes()
    again = Registry.parse(data)
    assert again == registry
    assert again.to_bytes() == data
    assert registry.participants == tuple(PARTICIPANTS)
    assert registry.governance_keys == tuple(g.public for g in GOV[:2])
    assert registry.threshold == 2
    assert registry.params == Params()
    assert registry.network_id == tagged_hash(Tag.REGISTRY, registry.body_bytes).hex()
    assert registry.body_bytes == canonical_bytes(outer(registry)["registry"])


def test_queries() -> None:
    registry = make()
    assert registry.participant("EU") == PARTICIPANTS[1]
    assert registry.participant("XX") is None
    assert registry.authorities == ("BW", "EU")
    assert registry.chains == ("BW", "EU", "KP")


def test_registry_is_frozen() -> None:
    registry = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.threshold = 1  # type: ignore[misc]


def test_custom_params_round_trip() -> None:
    params = Params(tolerance_bp=10, max_validity_days=30, max_block_records=5)
    registry = make(params=params)
    assert Registry.parse(registry.to_bytes()).params == params


# --------------------------------------------------------------------------- network id


@pytest.mark.parametrize(
    "change",
    [
        {"name": "kp-test-2"},
        {"created": "2026-01-01T00:00:01Z"},
        {"participants": PARTICIPANTS[:2]},
        {"participants": [PARTICIPANTS[1], PARTICIPANTS[0], PARTICIPANTS[2]]},
        {"participants": [dataclasses.replace(PARTICIPANTS[0], url="https://bw2.example")]},
        {"participants": [dataclasses.replace(PARTICIPANTS[0], key=OUTSIDER.public)]},
        {"participants": [dataclasses.replace(PARTICIPANTS[0], role="observer")]},
        {"participants": [dataclasses.replace(PARTICIPANTS[0], name="Botswana!")]},
        {"governance": GOV, "signers": GOV[:2]},
        {"governance": [GOV[1], GOV[0]]},
        {"threshold": 1},
        {"params": Params(tolerance_bp=51)},
        {"params": Params(max_validity_days=61)},
        {"params": Params(heartbeat_seconds=6)},
    ],
    ids=[
        "name",
        "created",
        "fewer-participants",
        "participant-order",
        "url",
        "key",
        "role",
        "participant-name",
        "more-governance-keys",
        "governance-order",
        "threshold",
        "tolerance",
        "validity",
        "heartbeat",
    ],
)
def test_network_id_changes_with_any_change(change: dict[str, Any]) -> None:
    assert make(**change).network_id != make().network_id


def test_network_id_does_not_depend_on_who_signed() -> None:
    """The id is the hash of the body; signatures are outside it."""
    a = make(governance=GOV, signers=GOV[:2])
    b = make(governance=GOV, signers=GOV[1:])
    assert a.network_id == b.network_id
    assert a.to_bytes() != b.to_bytes()


# --------------------------------------------------------------------------- threshold


def test_one_of_two_required_is_refused() -> None:
    with pytest.raises(ThresholdError, match="signed by 1 of 2 required") as info:
        make(signers=GOV[:1])
    assert (info.value.valid, info.value.required) == (1, 2)
    assert isinstance(info.value, SignatureError)


def test_no_signature_is_refused() -> None:
    with pytest.raises(ThresholdError, match="signed by 0 of 2 required"):
        make(signers=[])


def test_unknown_keys_do_not_count() -> None:
    with pytest.raises(ThresholdError, match="signed by 1 of 2 required"):
        make(signers=[GOV[0], OUTSIDER])
    with pytest.raises(ThresholdError, match="signed by 0 of 2 required"):
        make(signers=[BW, EU, OUTSIDER])


def test_duplicate_signatures_do_not_count() -> None:
    with pytest.raises(ThresholdError, match="signed by 1 of 2 required"):
        make(signers=[GOV[0], GOV[0]])


def test_invalid_signature_does_not_count() -> None:
    value = outer(make())
    value["sigs"][1]["sig"] = value["sigs"][0]["sig"]  # GOV[0]'s signature under GOV[1]'s id
    with pytest.raises(ThresholdError, match="signed by 1 of 2 required"):
        Registry.parse(canonical_bytes(value))


def test_signature_over_other_bytes_does_not_count() -> None:
    """A signature made for another registry (or another tag) is worthless here."""
    value = outer(make())
    other = outer(make(name="other"))
    value["sigs"][1] = other["sigs"][1]
    with pytest.raises(ThresholdError, match="signed by 1 of 2 required"):
        Registry.parse(canonical_bytes(value))
    body_bytes = canonical_bytes(value["registry"])
    value["sigs"][1]["sig"] = GOV[1].sign(Tag.SIG_HEADER, body_bytes).hex()
    with pytest.raises(ThresholdError, match="signed by 1 of 2 required"):
        Registry.parse(canonical_bytes(value))


def test_threshold_met_by_any_subset() -> None:
    for pair in [GOV[:2], GOV[1:], [GOV[0], GOV[2]], [GOV[2], OUTSIDER, GOV[0]]]:
        make(governance=GOV, signers=pair)


def test_verify_threshold_directly() -> None:
    payload = b"payload"
    sigs = [(g.public.key_id, g.sign(Tag.SIG_RECORD, payload)) for g in GOV]
    keys = [g.public for g in GOV]
    verify_threshold(Tag.SIG_RECORD, payload, sigs, keys, 3, what="x")
    with pytest.raises(ThresholdError, match="thing: signed by 2 of 3 required"):
        verify_threshold(Tag.SIG_RECORD, payload, sigs[:2] + sigs[:1], keys, 3, what="thing")
    with pytest.raises(ThresholdError, match="signed by 0 of 1 required"):
        verify_threshold(Tag.SIG_REGISTRY, payload, sigs, keys, 1, what="x")
    short = [(GOV[0].public.key_id, b"\x00" * 10)]
    with pytest.raises(ThresholdError, match="signed by 0 of 1 required"):
        verify_threshold(Tag.SIG_RECORD, payload, short, keys, 1, what="x")


def test_strict_refuses_any_bad_signature_once_the_threshold_is_met() -> None:
    payload = b"payload"
    sigs = [(g.public.key_id, g.sign(Tag.SIG_RECORD, payload)) for g in GOV]
    keys = [g.public for g in GOV[:2]]
    # the threshold is met either way; only strict names the outsider's signature
    verify_threshold(Tag.SIG_RECORD, payload, sigs, keys, 2, what="x")
    with pytest.raises(SignatureError, match="not a governance key") as info:
        verify_threshold(Tag.SIG_RECORD, payload, sigs, keys, 2, what="x", strict="s")
    assert info.value.field == "s[2]"
    twice = sigs[:2] + sigs[1:2]
    with pytest.raises(SignatureError, match="signs twice") as info:
        verify_threshold(Tag.SIG_RECORD, payload, twice, keys, 2, what="x", strict="s")
    assert info.value.field == "s[2]"
    # below the threshold, strict or not, the threshold is what is said
    with pytest.raises(ThresholdError):
        verify_threshold(Tag.SIG_RECORD, payload, sigs[2:], keys, 1, what="x", strict="s")


def test_strict_parse_verifies_each_signature_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = make(governance=GOV, signers=GOV)
    calls: list[str] = []
    real = type(GOV[0].public).verify

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(self.key_id)
        real(self, *args, **kwargs)

    monkeypatch.setattr(type(GOV[0].public), "verify", counted)
    Registry.parse(registry.to_bytes(), strict=True)
    assert sorted(calls) == sorted(g.public.key_id for g in GOV)
    value = parse_canonical(registry.to_bytes())
    value["sigs"][2]["sig"] = GOV[2].sign(Tag.SIG_HEADER, registry.body_bytes).hex()
    Registry.parse(canonical_bytes(value))  # 2 of 3 valid: enough when not strict
    with pytest.raises(SignatureError, match="does not verify") as info:
        Registry.parse(canonical_bytes(value), strict=True)
    assert info.value.field == "registry.sigs[2]"


# --------------------------------------------------------------------------- structure


def test_duplicate_participant_codes_refused() -> None:
    twice = [*PARTICIPANTS, dataclasses.replace(PARTICIPANTS[0], name="Botswana again")]
    with pytest.raises(SchemaError, match="unique") as info:
        make(participants=twice)
    assert info.value.field == "registry.participants"


def test_kp_is_not_a_participant() -> None:
    kp = Participant("KP", "Kimberley Process", "authority", "https://kp.example", OUTSIDER.public)
    with pytest.raises(SchemaError, match="governance chain") as info:
        make(participants=[*PARTICIPANTS, kp])
    assert info.value.field == "registry.participants"


def test_threshold_above_number_of_keys_refused() -> None:
    with pytest.raises(SchemaError) as info:
        make(threshold=3)
    assert info.value.field == "registry.governance.threshold"
    with pytest.raises(SchemaError) as info:
        make(threshold=0)
    assert info.value.field == "registry.governance.threshold"


def test_duplicate_governance_keys_refused() -> None:
    with pytest.raises(SchemaError, match="distinct") as info:
        make(governance=[GOV[0], GOV[0]], signers=GOV[:1])
    assert info.value.field == "registry.governance.keys"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("name"), "registry.name"),
        (lambda b: b.update(v=2), "registry.v"),
        (lambda b: b.update(extra=1), "registry"),
        (lambda b: b.update(participants=[]), "registry.participants"),
        (lambda b: b["participants"][0].update(code="bw"), "registry.participants[0].code"),
        (lambda b: b["participants"][0].update(role="miner"), "registry.participants[0].role"),
        (lambda b: b["participants"][0].pop("url"), "registry.participants[0].url"),
        (lambda b: b["governance"].update(keys=[]), "registry.governance.keys"),
        (lambda b: b["params"].update(tolerance_bp=-1), "registry.params.tolerance_bp"),
        (lambda b: b["params"].update(max_validity_days=0), "registry.params.max_validity_days"),
        (lambda b: b["params"].update(extra=1), "registry.params"),
        (lambda b: b.update(created="2026-01-01"), "registry.created"),
    ],
    ids=[
        "no-name",
        "version",
        "unknown-field",
        "no-participants",
        "bad-code",
        "bad-role",
        "no-url",
        "no-governance-keys",
        "negative-tolerance",
        "zero-validity",
        "unknown-param",
        "bad-time",
    ],
)
def test_malformed_bodies_refused(mutate: Any, field: str) -> None:
    body = copy.deepcopy(outer(make())["registry"])
    mutate(body)
    with pytest.raises(SchemaError) as info:
        Registry.parse(resign(body, GOV[:2]))
    assert info.value.field == field


def test_non_canonical_bytes_refused() -> None:
    data = make().to_bytes()
    with pytest.raises(InvalidData):
        Registry.parse(data + b"\n")
    with pytest.raises(InvalidData):
        Registry.parse(data.replace(b'{"registry":', b'{ "registry":'))


def test_unknown_outer_field_refused() -> None:
    value = outer(make())
    value["note"] = "hello"
    with pytest.raises(SchemaError) as info:
        Registry.parse(canonical_bytes(value))
    assert info.value.field == ""


# --------------------------------------------------------------------------- bit flips

#: every governance key must sign, so that no signature can be spared
STRICT = make(governance=GOV, threshold=3).to_bytes()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(STRICT) * 8 - 1))
def test_any_bit_flip_fails(bit: int) -> None:
    flipped = bytearray(STRICT)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidData):
        Registry.parse(bytes(flipped))
