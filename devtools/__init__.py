"""Tools for tests, benchmarks and the bundle specification's files: not production.

``devtools.workload`` makes networks whose keys come from fixed seeds and
builds their records in memory; ``devtools.realistic`` writes long streams of
records in a realistic mix, the same for the same seed; ``devtools.artisanal``
writes Sierra Leone's artisanal chain case by case and streams of small first
sales (the tests' and the artisanal benchmark's); ``devtools.spec_vectors``
writes docs/spec/vectors/ from such a network, so that the files are
byte-for-byte reproducible; ``devtools.spec_schemas`` writes docs/spec/schemas/
from ``ledger.spec_schema``. Anything signed with a seeded key can be forged
by anyone who reads this package, so these keys must never sign for a real
network.

That is why this is a package of its own, beside the shipped ones and not
inside the core (``kpledger.ledger``): no module of ``ledger``, ``keys``,
``node`` or ``api`` imports it, and in ``cli`` only ``cli.example`` does,
for its network of fresh keys made on each run (``Network.create(seed=None)``);
its records come from the KP story's one builder (``cli.story``).
``tests/test_devtools.py`` checks both.
It is installed with the rest, because ``kpl example`` and ``make bench``
use it.
"""

__all__: list[str] = []
