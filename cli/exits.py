"""``kpl``'s exit codes and its JSON output convention, in one place.

Every command exits with one of these codes, so scripts can tell a parcel that
does not exist from a node that is down. ``kpl verify`` has used 0, 1 and 2
from the start; the rest follow.

JSON (``--json``): one document on stdout, UTF-8, keys sorted, two-space
indent. Weights are integers in hundredths of a carat, money is integer US
cents, origin shares are per cent (numbers), times are UTC RFC 3339 strings
ending in ``Z`` and dates ``YYYY-MM-DD``, exactly as in the API. A record is
referred to as ``{"chain": ..., "index": ..., "hash": ...}`` and written
``CHAIN/INDEX`` (``BW/4``: record 4 of BW's log) in text. On an error with
``--json``, stderr carries ``{"error": {...}}`` and stdout stays empty.
"""

from __future__ import annotations

import json
import sys
from enum import IntEnum
from typing import Any

__all__ = ["EXIT_HELP", "Exit", "print_json", "status_exit"]


class Exit(IntEnum):
    OK = 0
    VERIFICATION_FAILED = 1
    INVALID_INPUT = 2
    NOT_FOUND = 3
    UNAUTHORISED = 4
    UNREACHABLE = 5
    NODE_ERROR = 6


#: what ``kpl --help`` says about them
EXIT_HELP = (
    "Exit codes: 0 success; 1 verification failed (the bundle or proof does not check); "
    "2 invalid input (a bad option, file or id, or the node refused the input: HTTP 400/422); "
    "3 not found (HTTP 404); 4 unauthorised (no or a refused token, or a role that may not: "
    "HTTP 401/403); 5 node unreachable (connection refused, timeout, TLS); 6 the node failed "
    "otherwise (HTTP 409, 5xx). With --json, reading commands print one JSON document: weights "
    "in hundredths of a carat, money in US cents, times in UTC RFC 3339 with Z."
)


def status_exit(status: int) -> Exit:
    """The exit code for a node's HTTP error status."""
    if status == 404:
        return Exit.NOT_FOUND
    if status in (401, 403):
        return Exit.UNAUTHORISED
    if status in (400, 413, 414, 422):
        return Exit.INVALID_INPUT
    return Exit.NODE_ERROR


def print_json(doc: Any) -> None:
    """``doc`` as the CLI's JSON on stdout."""
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error_json(code: Exit, message: str, **extra: Any) -> None:
    """An error as JSON on stderr (``--json`` mode)."""
    body = {"exit": int(code), "kind": code.name.lower(), "message": message, **extra}
    sys.stderr.write(json.dumps({"error": body}, sort_keys=True, ensure_ascii=False) + "\n")
    sys.stderr.flush()
