"""FastAPI dependency aliases.

Authentication (`CurrentUser`): each user holds API keys, random bearer tokens stored only as SHA-256. A
request sends one as `Authorization: Bearer <key>` or `X-Api-Key: <key>`; it resolves to a `Principal`
(user id, organisation id, roles) or to a 401 problem. What a principal may do is decided in the service
functions (services.access), never in routers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from services.context import Context
from services.registry.models import Principal


def get_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


Ctx = Annotated[Context, Depends(get_context)]


def get_session(ctx: Ctx) -> Iterator[Session]:
    """One write transaction per request, committed when the handler returns without error."""
    with Session(ctx.engine) as session:
        yield session
        session.commit()


def get_read_session(ctx: Ctx) -> Iterator[Session]:
    """A read-only session that never blocks writers."""
    with Session(ctx.read_engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]


_api_key = APIKeyHeader(name="X-Api-Key", auto_error=False, description="a Daodi Trace API key")
_bearer = HTTPBearer(auto_error=False, description="a Daodi Trace API key as a bearer token")


def get_current_user(
    ctx: Ctx,
    api_key: Annotated[str | None, Security(_api_key)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller's principal; a 401 problem when the key is missing or unknown."""
    from services.registry.service import authenticate

    token = bearer.credentials if bearer is not None else api_key
    # A short read of its own: the request's write transaction stays as short as possible.
    with Session(ctx.read_engine) as session:
        return authenticate(session, token)


CurrentUser = Annotated[Principal, Depends(get_current_user)]
