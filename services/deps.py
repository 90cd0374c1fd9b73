"""FastAPI dependency aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from services.context import Context


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
