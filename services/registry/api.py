"""Registry HTTP API: organisations, users, bases, plots, pesticides, devices (API key required)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.deps import Ctx, CurrentUser, ReadSessionDep, SessionDep
from services.fields import INT4_MAX
from services.pages import Limit, Offset, Page
from services.problems import PROBLEM_RESPONSES
from services.registry import service
from services.registry.models import (
    DEVICE_ID,
    ApiKeyOut,
    BaseIn,
    BasePublic,
    DeviceIn,
    DevicePublic,
    OrgIn,
    OrgPublic,
    PesticideIn,
    PesticidePublic,
    PlotIn,
    PlotPublic,
    UserIn,
    UserPublic,
    UserWithKey,
)

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
Id = Annotated[int, Path(ge=1, le=INT4_MAX)]


def _now() -> datetime:
    return datetime.now(UTC)


@router.post("/orgs", response_model=OrgPublic, status_code=201, tags=["registry"])
def register_org(session: SessionDep, ctx: Ctx, user: CurrentUser, data: OrgIn) -> OrgPublic:
    """Register an organisation (admin); the unified social credit code is checked (GB 32100-2015)."""
    return service.register_org(session, ctx.log, user, data, now=_now())


@router.get("/orgs", response_model=Page[OrgPublic], tags=["registry"])
def list_orgs(
    session: ReadSessionDep, user: CurrentUser, limit: Limit = 50, offset: Offset = 0
) -> Page[OrgPublic]:
    """Organisations."""
    items, total = service.list_orgs(session, user, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/orgs/{org_id}", response_model=OrgPublic, tags=["registry"])
def get_org(session: ReadSessionDep, user: CurrentUser, org_id: Id) -> OrgPublic:
    """One organisation."""
    return service.get_org(session, user, org_id)


@router.post("/users", response_model=UserWithKey, status_code=201, tags=["registry"])
def create_user(session: SessionDep, user: CurrentUser, data: UserIn) -> UserWithKey:
    """Create a user with roles in an organisation (admin); the response shows its API key once."""
    return service.create_user(session, user, data, now=_now())


@router.get("/users", response_model=Page[UserPublic], tags=["registry"])
def list_users(
    session: ReadSessionDep, user: CurrentUser, limit: Limit = 50, offset: Offset = 0
) -> Page[UserPublic]:
    """Users of the caller's organisation (all of them for admins and regulators)."""
    items, total = service.list_users(session, user, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/users/me", response_model=UserPublic, tags=["registry"])
def me(session: ReadSessionDep, user: CurrentUser) -> UserPublic:
    """The caller."""
    return service.get_user(session, user, user.user_id)


@router.get("/users/{user_id}", response_model=UserPublic, tags=["registry"])
def get_user(session: ReadSessionDep, user: CurrentUser, user_id: Id) -> UserPublic:
    """One user."""
    return service.get_user(session, user, user_id)


@router.post("/users/{user_id}/api-keys", response_model=ApiKeyOut, status_code=201, tags=["registry"])
def issue_api_key(session: SessionDep, user: CurrentUser, user_id: Id) -> ApiKeyOut:
    """Issue another API key for oneself (or for anyone, as admin); shown once."""
    return service.issue_api_key(session, user, user_id, now=_now())


@router.post("/bases", response_model=BasePublic, status_code=201, tags=["registry"])
def create_base(session: SessionDep, ctx: Ctx, user: CurrentUser, data: BaseIn) -> BasePublic:
    """Register a base of the caller's organisation."""
    return service.create_base(session, ctx.log, user, data, now=_now())


@router.get("/bases", response_model=Page[BasePublic], tags=["registry"])
def list_bases(
    session: ReadSessionDep, user: CurrentUser, limit: Limit = 50, offset: Offset = 0
) -> Page[BasePublic]:
    """Bases the caller may see."""
    items, total = service.list_bases(session, user, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/bases/{base_id}", response_model=BasePublic, tags=["registry"])
def get_base(session: ReadSessionDep, user: CurrentUser, base_id: Id) -> BasePublic:
    """One base."""
    return service.get_base(session, user, base_id)


@router.post("/plots", response_model=PlotPublic, status_code=201, tags=["registry"])
def register_plot(session: SessionDep, ctx: Ctx, user: CurrentUser, data: PlotIn) -> PlotPublic:
    """Register a plot: its polygon is validated, its area (mu) and daodi regions computed."""
    return service.register_plot(session, ctx.log, user, data, now=_now())


@router.get("/plots", response_model=Page[PlotPublic], tags=["registry"])
def list_plots(
    session: ReadSessionDep,
    user: CurrentUser,
    base_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[PlotPublic]:
    """Plots the caller may see."""
    items, total = service.list_plots(session, user, base_id=base_id, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/plots/{plot_id}", response_model=PlotPublic, tags=["registry"])
def get_plot(session: ReadSessionDep, user: CurrentUser, plot_id: Id) -> PlotPublic:
    """One plot."""
    return service.get_plot(session, user, plot_id)


@router.post("/pesticides", response_model=PesticidePublic, status_code=201, tags=["registry"])
def add_pesticide(session: SessionDep, user: CurrentUser, data: PesticideIn) -> PesticidePublic:
    """Add a pesticide product (admin or quality)."""
    return service.add_pesticide(session, user, data)


@router.get("/pesticides", response_model=Page[PesticidePublic], tags=["registry"])
def list_pesticides(
    session: ReadSessionDep,
    user: CurrentUser,
    banned: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[PesticidePublic]:
    """Pesticide products with their PHI per herb; `banned=true` lists the banned inputs."""
    items, total = service.list_pesticides(session, banned=banned, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/pesticides/{pesticide_id}", response_model=PesticidePublic, tags=["registry"])
def get_pesticide(session: ReadSessionDep, user: CurrentUser, pesticide_id: Id) -> PesticidePublic:
    """One pesticide product."""
    return service.get_pesticide(session, pesticide_id)


@router.post("/devices", response_model=DevicePublic, status_code=201, tags=["registry"])
def register_device(session: SessionDep, ctx: Ctx, user: CurrentUser, data: DeviceIn) -> DevicePublic:
    """Register a field device of the caller's organisation."""
    return service.register_device(session, ctx.log, user, data, now=_now())


@router.get("/devices", response_model=Page[DevicePublic], tags=["registry"])
def list_devices(
    session: ReadSessionDep, user: CurrentUser, limit: Limit = 50, offset: Offset = 0
) -> Page[DevicePublic]:
    """Devices the caller may see."""
    items, total = service.list_devices(session, user, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/devices/{device_id}", response_model=DevicePublic, tags=["registry"])
def get_device(
    session: ReadSessionDep, user: CurrentUser, device_id: Annotated[str, Path(pattern=DEVICE_ID)]
) -> DevicePublic:
    """One device."""
    return service.get_device(session, user, device_id)
