"""Limit/offset pagination shared by list endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.sql import Select
from sqlmodel import Session

MAX_LIMIT = 200
T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="items to skip")]


class Page(BaseModel, Generic[T]):
    """One page of a list; `total` counts every match."""

    items: list[T]
    total: int
    limit: int
    offset: int


def fetch_page(session: Session, statement: Select[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    """Rows of one page of `statement` (which must be ordered) and the total count. Requires limit >= 1."""
    total = session.execute(
        select(func.count()).select_from(statement.order_by(None).subquery())
    ).scalar_one()
    rows = list(session.execute(statement.limit(limit).offset(offset)).scalars())
    return rows, int(total)
