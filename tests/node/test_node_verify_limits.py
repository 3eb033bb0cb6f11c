"""Hostile bundles to verify against a real node process: memory and health stay bounded.

``POST /v1/bundles/verify`` is public. Three clients send 64 MiB bodies at
once, declared (``Content-Length``) and streamed (chunked, no length), then
three bodies just under the public cap built to be expensive to parse. The
node's resident memory must stay under ``RSS_BOUND`` and ``/healthz`` must
answer within ``HEALTH_BOUND`` throughout. Verifications over
``http.verify_concurrency`` are refused with 503 before their body is read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(180)

HOSTILE = 64 * 1024 * 1024
CAP = 1024 * 1024
#: resident memory of the node process, whatever it is asked (it idles near 80 MB)
RSS_BOUND = 300 * 1024 * 1024
#: /healthz while the node refuses and verifies: the issue's 1 s, doubled for a 2-core
#: machine shared with other test runs (typical maximum measured: 0.1-0.6 s)
HEALTH_BOUND = 2.0


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Watch:
    """Samples the node's RSS and /healthz latency from a thread until stopped."""

    def __init__(self, url: str, pid: int) -> None:
        self.url = url
        self.pid = pid
        self.peak = 0
        self.health: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as http:
            while not self.stop.is_set():
                self.peak = max(self.peak, rss(self.pid))
                t0 = time.monotonic()
                try:
                    ok = http.get(self.url + "/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.health.append(time.monotonic() - t0 if ok else float("inf"))
                self.stop.wait(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def send_raw(
    port: int, head: bytes, body_chunks: Any, read_timeout: float = 30.0
) -> tuple[bytes, int]:
    """Send ``head`` then chunks until the node answers or closes; (answer, bytes sent)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(head)
        s.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += s.recv(65536)
            if answer:
                break
            try:
                s.setblocking(True)
                s.settimeout(read_timeout)
                s.sendall(chunk)
                s.setblocking(False)
                sent += len(chunk)
            except OSError:
                break
        s.setblocking(True)
        s.settimeout(read_timeout)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
                if b"\r\n\r\n" in answer and answer.count(b"}") >= 1:
                    break
        except OSError:
            pass
    return answer, sent


def declared(port: int) -> tuple[bytes, int]:
    head = (
        b"POST /v1/bundles/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(HOSTILE).encode() + b"\r\n\r\n"
    )
    return send_raw(port, head, (b"[" * 65536 for _ in range(HOSTILE // 65536)))


def streamed(port: int) -> tuple[bytes, int]:
    head = (
        b"POST /v1/bundles/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"10000\r\n" + b"[0," * 21845 + b"0\r\n"  # 65536 bytes of payload per chunk
    return send_raw(port, head, (chunk for _ in range(HOSTILE // 65536)))


def expensive(port: int) -> tuple[bytes, int]:
    """Just under the cap: a list of ~350,000 empty objects (cheap bytes, costly objects)."""
    body = b"[" + b"{}," * ((CAP - 8) // 3) + b"{}]"
    assert len(body) <= CAP
    head = (
        b"POST /v1/bundles/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return send_raw(port, head, [body[i : i + 65536] for i in range(0, len(body), 65536)])


def run_three(fn: Any, port: int) -> list[tuple[bytes, int]]:
    out: list[Any] = [None] * 3

    def one(i: int) -> None:
        out[i] = fn(port)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out


def test_three_hostile_verifications_at_once(cluster: Any) -> None:
    net = cluster(["BW"], ())
    net.start("BW")
    node = net.nodes["BW"]
    assert node.proc is not None
    port = int(node.url.rsplit(":", 1)[1])
    idle = rss(node.proc.pid)
    watch = Watch(node.url, node.proc.pid)
    try:
        for answer, sent in run_three(declared, port):
            assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
            assert b"urn:kpledger:problem:too-large" in answer
            assert sent < 8 * 1024 * 1024  # refused long before the 64 MiB were sent
        # two streams take both verification slots and are cut at the cap (413); a third
        # finds the slots taken (503): either way refused before 64 MiB were read
        counted = 0
        for answer, sent in run_three(streamed, port):
            assert answer.startswith((b"HTTP/1.1 413", b"HTTP/1.1 503")), answer[:300]
            counted += answer.startswith(b"HTTP/1.1 413")
            assert sent < 16 * 1024 * 1024
        assert counted >= 1
        results = run_three(expensive, port)
        statuses = sorted(a.split(b" ", 2)[1] for a, _ in results)
        assert set(statuses) <= {b"200", b"503"}, [a[:300] for a, _ in results]
        for answer, _ in results:
            if answer.startswith(b"HTTP/1.1 200"):
                assert b'"ok":false' in answer.replace(b" ", b"")
                assert b'"step":"parse"' in answer.replace(b" ", b"")
        time.sleep(1.0)  # and a second after: the node must have come back to rest
    finally:
        watch.close()
    print(
        f"RSS idle {idle / 2**20:.0f} MiB, peak {watch.peak / 2**20:.0f} MiB; "
        f"/healthz max {max(watch.health):.3f} s over {len(watch.health)} probes"
    )
    assert watch.peak < RSS_BOUND, f"peak RSS {watch.peak / 2**20:.0f} MiB"
    assert len(watch.health) >= 5
    assert max(watch.health) < HEALTH_BOUND, sorted(watch.health)[-5:]
    assert node.alive


def test_verifications_over_the_concurrency_limit_get_503(cluster: Any) -> None:
    net = cluster(["BW"], ())
    net.configure("BW", lambda doc: doc.__setitem__("http", {"verify_concurrency": 2}))
    net.start("BW")
    node = net.nodes["BW"]
    port = int(node.url.rsplit(":", 1)[1])
    holders = []
    try:
        for _ in range(2):  # two uploads in progress hold both slots
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(
                b"POST /v1/bundles/verify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
            )
            holders.append(s)
        time.sleep(0.5)
        answer = httpx.post(node.url + "/v1/bundles/verify", content=b"{}", timeout=10)
        assert answer.status_code == 503, answer.text
        assert answer.json()["type"] == "urn:kpledger:problem:busy"
        assert answer.headers["retry-after"] == "1"
    finally:
        for s in holders:
            s.close()
    deadline = time.monotonic() + 10
    while True:  # the slots are free again once those uploads end
        answer = httpx.post(node.url + "/v1/bundles/verify", content=b"{}", timeout=10)
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.status_code == 200, answer.text
