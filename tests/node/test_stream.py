"""``node.stream.ArrayItems``: the items of a pull answer, decoded as its bytes arrive."""

from __future__ import annotations

import json
import random

import pytest

from kpledger.ledger.canonical import load_json
from kpledger.ledger.errors import InvalidData
from kpledger.node.stream import ArrayItems

ITEMS = [
    {"header": {"chain": "BW", "height": 1}, "records": [{"note": '}],{"x":[', "n": 1}]},
    {"header": {"chain": "BW", "height": 2}, "records": []},
    {"name": "Mbuji-Mayi \u00e9\u00e8 ✓ 💎", "list": [1, [2, [3]], {"a": None}], "t": True},
    [],
    "a string with ] and } inside",
    -42,
]


def _feed(data: bytes, sizes: list[int]) -> tuple[list[object], list[int]]:
    """Feed ``data`` in pieces of ``sizes`` (cycled); the items, and when each came out."""
    stream = ArrayItems("blocks")
    out: list[object] = []
    when: list[int] = []
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        got = stream.feed(data[pos : pos + size])
        pos += size
        i += 1
        out += got
        when += [pos] * len(got)
    got = stream.close()
    out += got
    when += [len(data)] * len(got)
    return out, when


@pytest.mark.parametrize("spaced", [False, True])
def test_items_are_those_of_the_whole_document_however_the_bytes_are_cut(spaced: bool) -> None:
    doc = {"blocks": ITEMS}
    data = (json.dumps(doc, indent=1) if spaced else json.dumps(doc, ensure_ascii=False)).encode()
    rng = random.Random(5)
    for sizes in ([1], [2], [3, 7], [len(data)], [rng.randrange(1, 40) for _ in range(50)]):
        items, _ = _feed(data, sizes)
        assert items == load_json(data)["blocks"] == ITEMS


def test_each_item_comes_out_before_the_answer_ends() -> None:
    blocks = [{"header": {"height": h}, "records": ["r" * 500] * 20} for h in range(1, 21)]
    data = json.dumps({"blocks": blocks}, separators=(",", ":")).encode()
    items, when = _feed(data, [1000])
    assert items == blocks
    ends = [data.index(b'{"header":{"height":%d}' % h) for h in range(2, 21)] + [len(data)]
    for h, (out_at, end) in enumerate(zip(when, ends, strict=True), start=1):
        # out once its last byte and at most the next piece (or two, for a retried one) came
        assert out_at <= end + 2000, (h, out_at, end)
    assert when[0] < len(data) // 4


def test_an_empty_array_gives_no_items() -> None:
    assert _feed(b'{"blocks":[]}', [1]) == ([], [])
    assert _feed(b' { "blocks" : [ ] } \n', [4]) == ([], [])


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b'{"blocks":[{"a":1.5}]}', "floats are not allowed"),
        (b'{"blocks":[{"a":1,"a":2}]}', "duplicate key 'a'"),
        (b'{"blocks":[{"a":123456789012345678901}]}', "integers must lie within"),
        (b'{"blocks":[NaN]}', "item 1"),
        (b'{"blocks":[{"a":1}{"b":2}]}', "expected ',' or ']'"),
        (b'{"blocks":[{"a":1},]}', "item 2"),
        (b'{"blocks":[{"a":1}', "ends inside its 'blocks' array"),
        (b'{"blocks":[{"a":1}]', "unexpected text after"),
        (b'{"blocks":[{"a":1}]}garbage', "unexpected text after"),
        (b'{"heads":[{"a":1}]}', "first member is 'heads', not 'blocks'"),
        (b'["blocks"]', 'not an object holding "blocks"'),
        (b"", 'not an object holding "blocks"'),
        (b'{"blocks":["\xff"]}', "not UTF-8"),
        (b'{"blocks":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "item 1"),
    ],
)
def test_bad_answers_are_refused_naming_what_is_wrong(data: bytes, says: str) -> None:
    for sizes in ([1], [len(data) or 1]):
        with pytest.raises(InvalidData, match=says):
            _feed(data, sizes)


def test_a_head_that_never_opens_the_array_is_refused_early() -> None:
    stream = ArrayItems("blocks", what="answer to GET /x")
    with pytest.raises(InvalidData, match="answer to GET /x: not an object"):
        stream.feed(b"{" + b" " * 1000)
