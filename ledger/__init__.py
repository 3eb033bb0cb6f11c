"""kpledger's pure core: canonical bytes, RFC 9162 logs, records, blocks, rules.

No I/O happens here: no files, no network, no database. Everything is a
function of its arguments, so every node, and every offline verifier,
reaches the same verdict on the same input.
"""

__all__: list[str] = []
