"""Certificate codes (``ledger.certcode``): built, read back, and bad codes refused."""

from __future__ import annotations

import pytest

from kpledger.ledger.certcode import CertificateCode
from kpledger.ledger.errors import SchemaError

NET = "ab" * 32
REC = bytes(range(32))


def test_code_round_trips() -> None:
    code = CertificateCode("https://kp.example/x/", NET, "BW-2026-1", REC)
    url = code.url()
    assert url == (f"https://kp.example/x/#/certificate/BW-2026-1?network={NET}&record={REC.hex()}")
    back = CertificateCode.parse(url)
    assert (back.base, back.network, back.number, back.record) == (
        "https://kp.example/x",
        NET,
        "BW-2026-1",
        REC,
    )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("https://kp.example/#/parcel/BW-1", "code"),
        ("https://kp.example/#/certificate/BW-1", "code"),
        (f"https://kp.example/#/certificate/BW-1?network={NET}", "code"),
        (f"https://kp.example/#/certificate/BW-1?network={NET}&record=zz", "record"),
        (f"https://kp.example/#/certificate/BW-1?network=AB&record={REC.hex()}", "network"),
        (f"https://kp.example/#/certificate/b w?network={NET}&record={REC.hex()}", "number"),
        (f"javascript:x/#/certificate/BW-1?network={NET}&record={REC.hex()}", "base"),
        (f"https://kp.example/#/certificate/BW-1?network={NET}&record={REC.hex()}&x=1", "code"),
    ],
)
def test_bad_codes_name_what_is_wrong(text: str, field: str) -> None:
    with pytest.raises(SchemaError) as info:
        CertificateCode.parse(text)
    assert info.value.field == field, info.value
