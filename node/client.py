"""A small synchronous HTTP client for a node's API (demo, tests, benchmarks, scripts)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.ledger.records import Record

#: ids per ``POST /v1/records/outcomes`` (the node answers up to 1,000 at once)
OUTCOMES_BATCH = 1000

__all__ = ["ClientError", "NodeClient"]


class ClientError(LedgerError):
    """A node answered with an error (its RFC 9457 problem is in ``problem``)."""

    code = "client"

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"HTTP {status}: {problem.get('detail', problem)}")


class NodeClient:
    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        verify: Any = True,
        cert: Any = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, verify=verify, cert=cert
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"detail": response.text[:500]}
            raise ClientError(response.status_code, problem)
        try:
            return response.json()
        except ValueError as exc:
            raise InvalidData(f"answer from {self.url} is not JSON: {exc}") from exc

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self.http.get(path, params=params or None))

    def get_bytes(self, path: str, **params: Any) -> bytes:
        """The raw body of a GET (bundles, CSV); raises ``ClientError`` on an error status."""
        response = self.http.get(path, params=params or None)
        if response.status_code >= 400:
            self._json(response)
        return response.content

    def healthz(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.get("/healthz")
        return answer

    def heads(self) -> dict[str, dict[str, Any]]:
        answer: dict[str, dict[str, Any]] = self.get("/v1/heads")["heads"]
        return answer

    def submit(self, records: Sequence[Record | dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit records (one request); answers one outcome per record."""
        body = [r.draft() if isinstance(r, Record) else r for r in records]
        answer = self._json(self.http.post("/v1/records", json={"records": body}))
        results: list[dict[str, Any]] = answer["results"]
        return results

    def check(self, records: Sequence[Record | dict[str, Any]]) -> list[dict[str, Any]]:
        """A dry run of ``submit``: the node judges the records and writes nothing."""
        body = [r.draft() if isinstance(r, Record) else r for r in records]
        answer = self._json(self.http.post("/v1/records/check", json={"records": body}))
        results: list[dict[str, Any]] = answer["results"]
        return results

    def outcome(self, record_id: str, chain: str | None = None) -> dict[str, Any] | None:
        response = self.http.get(
            f"/v1/records/{record_id}", params={"chain": chain} if chain else None
        )
        if response.status_code == 404:
            return None
        answer: dict[str, Any] = self._json(response)
        return answer

    def outcomes(
        self, record_ids: Sequence[str], chain: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """The outcome of each id the chain knows (``POST /v1/records/outcomes``, in
        requests of up to 1,000 ids); ids it has never seen are left out."""
        found: dict[str, dict[str, Any]] = {}
        ids = list(record_ids)
        for i in range(0, len(ids), OUTCOMES_BATCH):
            body: dict[str, Any] = {"ids": ids[i : i + OUTCOMES_BATCH]}
            if chain is not None:
                body["chain"] = chain
            answer = self._json(self.http.post("/v1/records/outcomes", json=body))
            for o in answer["outcomes"]:
                found[str(o["id"])] = o
        return found

    def wait_settled(
        self, record_ids: Iterable[str], *, timeout: float = 30.0, poll: float = 0.05
    ) -> dict[str, dict[str, Any]]:
        """Poll until every record is committed or rejected; raise on timeout."""
        waiting = list(record_ids)
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while waiting:
            found = self.outcomes(waiting)
            still = []
            for rid in waiting:
                o = found.get(rid)
                if o is not None and o["status"] in ("committed", "rejected"):
                    done[rid] = o
                else:
                    still.append(rid)
            waiting = still
            if waiting:
                if time.monotonic() > deadline:
                    raise InvalidData(
                        f"{len(waiting)} records still pending after {timeout}s: {waiting[:5]}"
                    )
                time.sleep(poll)
        return done
