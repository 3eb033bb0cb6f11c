"""Fixtures of the API tests; their helpers live in ``api_support`` (import it by that
name: a test module that imported ``conftest`` would get whichever folder's conftest
pytest loaded first when several folders run in one session)."""

from api_support import audit_case, example, realistic

__all__ = ["audit_case", "example", "realistic"]
