"""kpledger: a permissioned custody ledger for rough diamonds under the Kimberley Process.

The source folders ledger/, keys/, node/, api/, cli/ and devtools/ (not
production: seeded keys for tests and examples) sit at the top of the
repository; this package links to them so that they install and import under
one name: ``kpledger.ledger``, ``kpledger.api`` and so on.
"""
