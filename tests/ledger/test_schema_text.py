"""Strings of signed documents refuse control, bidirectional and invisible characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kpledger.ledger.errors import SchemaError
from kpledger.ledger.schema import FORBIDDEN_CHARACTERS, Fields

BIDI = [chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))]
INVISIBLE = ["\u00ad", "\u034f", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u180e"]
SPACES = ["\u00a0", "\u2002", "\u2009", "\u202f", "\u3000", "\u1680"]
CONTROLS = ["\x00", "\t", "\n", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"]


@pytest.mark.parametrize("char", BIDI + INVISIBLE + SPACES + CONTROLS)
def test_each_is_refused_naming_field_and_character(char: str) -> None:
    f = Fields({"importer": {"name": f"Acme{char}Ltd"}})
    with pytest.raises(SchemaError) as info:
        f.obj("importer").string("name")
    assert info.value.field == "importer.name"
    assert f"U+{ord(char):04X}" in info.value.message
    assert "position 4" in info.value.message


@given(st.text(alphabet=st.characters(categories=["L", "M", "N", "P", "S"]), min_size=1))
def test_visible_text_of_any_script_passes(text: str) -> None:
    text = text.strip()
    if not text or len(text) > 200 or FORBIDDEN_CHARACTERS.search(text):
        return  # a few marks and symbols are on the fixed list (variation selectors, fillers)
    assert Fields({"name": text}).string("name") == text


def test_surrounding_spaces_still_refused() -> None:
    with pytest.raises(SchemaError, match="surrounding spaces"):
        Fields({"name": " Acme"}).string("name")
