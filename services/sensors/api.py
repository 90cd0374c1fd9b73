"""Sensor HTTP API: alarms and summaries of plots, device sessions, broker credentials (API key required)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime

from services.deps import CurrentUser, ReadSessionDep, SessionDep
from services.pages import Limit, Offset, Page
from services.problems import PROBLEM_RESPONSES
from services.registry.models import CODE, DEVICE_ID
from services.sensors import service
from services.sensors.models import (
    AlarmPublic,
    BrokerCredentials,
    DeviceSessionPublic,
    GatewayAccountIn,
    SummaryPeriod,
    SummaryPublic,
)

router = APIRouter(prefix="/api/v1", responses=PROBLEM_RESPONSES)
PlotCode = Annotated[str, Query(pattern=CODE, description="plot code")]
DeviceId = Annotated[str, Path(pattern=DEVICE_ID)]
Since = Annotated[AwareDatetime | None, Query(description="from this time on (RFC 3339 with offset)")]
Until = Annotated[AwareDatetime | None, Query(description="before this time (RFC 3339 with offset)")]
Name = Annotated[str | None, Query(pattern=r"^[a-z_]{1,30}$")]


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/sensors/alarms", response_model=Page[AlarmPublic], tags=["sensors"])
def list_alarms(
    session: ReadSessionDep,
    user: CurrentUser,
    plot: Annotated[str | None, Query(pattern=CODE, description="plot code")] = None,
    alarm: Name = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AlarmPublic]:
    """Frost, heat, waterlogging and drought alarms, newest first: growers see their organisation's plots,
    regulators and admins every plot."""
    items, total = service.list_alarms(
        session, user, plot=plot, alarm=alarm, since=since, until=until, limit=limit, offset=offset
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/sensors/summaries", response_model=Page[SummaryPublic], tags=["sensors"])
def list_summaries(
    session: ReadSessionDep,
    user: CurrentUser,
    plot: PlotCode,
    period: SummaryPeriod = "day",
    metric: Name = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[SummaryPublic]:
    """Hourly, daily (+08:00) or growing-period (`cycle`: planting to harvest) aggregates of a plot."""
    items, total = service.list_summaries(
        session,
        user,
        plot=plot,
        period=period,
        metric=metric,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        now=_now(),
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/sensors/sessions", response_model=Page[DeviceSessionPublic], tags=["sensors"])
def list_device_sessions(
    session: ReadSessionDep,
    user: CurrentUser,
    online: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[DeviceSessionPublic]:
    """Devices' last birth and death messages (growers: their organisation's devices)."""
    items, total = service.list_device_sessions(session, user, online=online, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/devices/{device_id}/session", response_model=DeviceSessionPublic, tags=["sensors"])
def get_device_session(
    session: ReadSessionDep, user: CurrentUser, device_id: DeviceId
) -> DeviceSessionPublic:
    """A device's last birth (boot id, firmware, clock state) and last death message."""
    return service.device_session(session, user, device_id)


@router.post(
    "/devices/{device_id}/broker-credentials",
    response_model=BrokerCredentials,
    status_code=201,
    tags=["sensors"],
)
def issue_device_credentials(
    session: SessionDep, user: CurrentUser, device_id: DeviceId
) -> BrokerCredentials:
    """Issue (or rotate) a registered device's MQTT password: shown once, kept as a PBKDF2-SHA512 hash.
    Render the broker files afterwards (`GET /api/v1/sensors/broker/passwd` and `/acl`)."""
    return service.issue_device_credentials(session, user, device_id, now=_now())


@router.post("/sensors/broker/gateways", response_model=BrokerCredentials, status_code=201, tags=["sensors"])
def issue_gateway_credentials(
    session: SessionDep, user: CurrentUser, data: GatewayAccountIn
) -> BrokerCredentials:
    """Issue (or rotate) a gateway's MQTT password (admin): shown once."""
    return service.issue_gateway_credentials(session, user, data, now=_now())


@router.get("/sensors/broker/passwd", response_class=PlainTextResponse, tags=["sensors"])
def broker_password_file(session: ReadSessionDep, user: CurrentUser) -> str:
    """The Mosquitto `password_file` (admin): PBKDF2-SHA512 `$7$` lines of every account in force."""
    return service.broker_password_file(session, user)


@router.get("/sensors/broker/acl", response_class=PlainTextResponse, tags=["sensors"])
def broker_acl_file(session: ReadSessionDep, user: CurrentUser) -> str:
    """The Mosquitto `acl_file` (admin): each device writes only under its own id, gateways read all."""
    return service.broker_acl_file(session, user)
