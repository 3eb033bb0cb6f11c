"""Request dependencies: the node, the caller's role, body size limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kpledger.api.problems import problem
from kpledger.node.config import TokenConfig
from kpledger.node.node import Node

__all__ = ["BodyLimit", "Caller", "NodeDep", "caller", "require"]


@dataclass(frozen=True)
class Caller:
    """Who is asking: ``public`` without a token, else the token's role."""

    role: str
    name: str = ""
    party: str | None = None


# The dependencies below are ``async def`` though they never wait: FastAPI runs a
# plain ``def`` dependency in its thread pool, two thread hops per request for
# a dictionary look-up and a hash; on the event loop they cost microseconds.


async def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


async def caller(request: Request) -> Caller:
    return _caller(request)


def _caller(request: Request) -> Caller:
    header = request.headers.get("authorization")
    if header is None:
        return Caller("public")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Authorization must be 'Bearer <token>'")
    node: Node = request.app.state.node
    found: TokenConfig | None = node.config.token_role(token.strip())
    if found is None:
        raise HTTPException(401, "unknown token")
    return Caller(found.role, found.name, found.party)


def require(*roles: str) -> Callable[[Request], Awaitable[Caller]]:
    """A dependency admitting only callers with one of ``roles``."""

    async def check(request: Request) -> Caller:
        who = _caller(request)
        if who.role == "public":
            raise HTTPException(401, f"this needs a token with role {' or '.join(roles)}")
        if who.role not in roles:
            raise HTTPException(
                403, f"a {who.role} token cannot do this; it needs {' or '.join(roles)}"
            )
        return who

    return check


class BodyLimit:
    """Refuse request bodies over a limit, declared or streamed, before reading them whole."""

    def __init__(self, app: ASGIApp, limits: Callable[[str], int]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._too_large(scope, receive, send, limit)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(scope, receive, send, limit)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(413, "too-large", f"request body over the {limit} byte limit")
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
