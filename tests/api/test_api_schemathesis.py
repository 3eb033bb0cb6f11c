"""Schemathesis against the OpenAPI schema, in process: no 5xx, every response matches it.

Every operation of the node's API is fuzzed (schemathesis' default
generation: valid and invalid inputs) as the public and as an auditor on a
WDC node, and as an operator and a peer on an EU node (record submission and
gossip), each serving the example story from its own in-memory store.
Bounded: ``KPL_FUZZ_EXAMPLES`` (default 25) examples per operation, no
deadline. The schemas are loaded when the module is collected (schemathesis'
lazy ``from_fixture`` loader needs a pytest internal that pytest 9 no longer
has).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from api_support import bearer, serve
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from kpledger.cli.example import run_example

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = int(os.environ.get("KPL_FUZZ_EXAMPLES", "25"))
_HERE = Path(tempfile.gettempdir())

_wdc = serve("WDC", run_example("sqlite://").store, _HERE, None).app
_eu_story = run_example("sqlite://")
_eu = serve("EU", _eu_story.store, _HERE, _eu_story.net.signers["EU"]).app
schema = schemathesis.openapi.from_asgi("/openapi.json", _wdc)
writer = schemathesis.openapi.from_asgi("/openapi.json", _eu)

fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@schema.parametrize()
@fuzz
def test_public(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@fuzz
def test_auditor(case: Any) -> None:
    case.call_and_validate(headers=bearer("auditor"), checks=CHECKS)


@writer.parametrize()
@fuzz
def test_operator(case: Any) -> None:
    case.call_and_validate(headers=bearer("operator"), checks=CHECKS)


@writer.parametrize()
@fuzz
def test_peer(case: Any) -> None:
    case.call_and_validate(headers=bearer("peer"), checks=CHECKS)
