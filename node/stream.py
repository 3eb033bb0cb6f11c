"""The items of a peer's ``{"blocks": [...]}`` answer, decoded as its bytes arrive.

A catching-up node reads answers of several MiB. Decoding a whole answer at
once holds its bytes, its text and every decoded block together; ``ArrayItems``
instead hands out each item of the array as soon as its last byte has arrived,
and keeps only the bytes of the item still incomplete. Items are decoded with
``ledger.canonical.strict_decoder``, exactly as strictly as ``load_json``.

The answer must be an object whose first (and only) member is the array, as
``Node.blocks_json`` writes it; whitespace between tokens is allowed.

An item is first tried once as much text has arrived as the item before it
took (blocks of one chain are alike in size), and after a failed try only
once its incomplete text has grown by half: however a peer shapes its bytes,
each byte is decoded a bounded number of times (at most about four).
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

from kpledger.ledger.canonical import strict_decoder
from kpledger.ledger.errors import EncodingError, InvalidData

__all__ = ["ArrayItems"]

_SPACE = re.compile(r"[ \t\n\r]*")
_HEAD = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"([^"\\]*)"[ \t\n\r]*:[ \t\n\r]*\[')
_TAIL = re.compile(r"[ \t\n\r]*\}[ \t\n\r]*\Z")
#: bytes of head a well-formed answer needs at most before its array opens
_HEAD_MAX = 256


class ArrayItems:
    """Feed the bytes of ``{"<key>": [item, ...]}`` in pieces; get the complete items."""

    def __init__(self, key: str, *, what: str = "answer") -> None:
        self.key = key
        self.what = what
        self.count = 0  # items handed out so far
        self._decoder = strict_decoder()
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._text = ""  # text not consumed yet
        self._opened = False
        self._closed = False  # the array's ']' was read
        #: the length of the last item: the next is not tried before as much text is read
        self._typical = 0
        self._retry = 0  # length of ``_text`` before which a failed item is not tried again

    def feed(self, data: bytes) -> list[Any]:
        """Take the next bytes; the items they complete (possibly none)."""
        try:
            self._text += self._utf8.decode(data)
        except UnicodeDecodeError as exc:
            raise InvalidData(f"{self.what}: not UTF-8: {exc}") from exc
        return self._items(final=False)

    def close(self) -> list[Any]:
        """The stream ended: the items still held; raises if the document is not whole."""
        try:
            self._text += self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise InvalidData(f"{self.what}: not UTF-8: {exc}") from exc
        items = self._items(final=True)
        if not self._opened:
            raise InvalidData(f'{self.what}: not an object holding "{self.key}": [...]')
        if not self._closed:
            raise InvalidData(f"{self.what}: ends inside its {self.key!r} array")
        if _TAIL.match(self._text) is None:
            raise InvalidData(f"{self.what}: unexpected text after its {self.key!r} array")
        return items

    # ------------------------------------------------------------ decoding
    def _open(self, final: bool) -> bool:
        m = _HEAD.match(self._text)
        if m is None:
            if final or len(self._text) > _HEAD_MAX:
                raise InvalidData(f'{self.what}: not an object holding "{self.key}": [...]')
            return False
        if m.group(1) != self.key:
            raise InvalidData(f"{self.what}: its first member is {m.group(1)!r}, not {self.key!r}")
        self._text = self._text[m.end() :]
        self._opened = True
        return True

    def _items(self, *, final: bool) -> list[Any]:
        if not self._opened and not self._open(final):
            return []
        out: list[Any] = []
        while not self._closed:
            pos = _SPACE.match(self._text).end()  # type: ignore[union-attr]
            if pos == len(self._text):
                break
            if self._text[pos] == "]":
                self._text = self._text[pos + 1 :]
                self._closed = True
                break
            if self.count + len(out) > 0:
                if self._text[pos] != ",":
                    raise InvalidData(f"{self.what}: expected ',' or ']' between items")
                pos = _SPACE.match(self._text, pos + 1).end()  # type: ignore[union-attr]
            item = self._item(pos, final)
            if item is None:
                break
            out.append(item[0])
        self.count += len(out)
        return out

    def _item(self, pos: int, final: bool) -> tuple[Any] | None:
        """The item starting at ``pos`` if its text is complete (the text is cut after it)."""
        if not final and len(self._text) < max(self._retry, pos + self._typical):
            return None
        try:
            value, stop = self._decoder.raw_decode(self._text, pos)
        except EncodingError as exc:
            raise InvalidData(f"{self.what}: item {self.count + 1}: {exc.message}") from exc
        except RecursionError as exc:
            raise InvalidData(f"{self.what}: item {self.count + 1} is nested too deep") from exc
        except json.JSONDecodeError as exc:
            if final:
                raise InvalidData(f"{self.what}: item {self.count + 1}: {exc}") from exc
            self._retry = pos + (len(self._text) - pos) * 3 // 2 + 1
            return None
        self._text = self._text[stop:]
        self._typical = stop - pos
        self._retry = 0
        return (value,)
