"""Regulator audit HTTP API (roles `regulator` and `admin`): findings, compliance, holds, recalls, lineage."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime

from services.audit import service
from services.audit.models import Affected, AuditActionIn, AuditFinding, Category, ComplianceSummary
from services.deps import Ctx, CurrentUser, ReadSessionDep, SessionDep
from services.fields import INT4_MAX
from services.pages import Limit, Offset, Page
from services.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=PROBLEM_RESPONSES)
LotCode = Annotated[str, Path(min_length=1, max_length=40, description="lot code", examples=["QS26H0007"])]
CSV = "text/csv; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EPCIS = "application/ld+json"


def _now() -> datetime:
    return datetime.now(UTC)


def _attachment(name: str) -> dict[str, str]:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return {"Content-Disposition": f'attachment; filename="{safe}"'}


@router.get("/findings", response_model=Page[AuditFinding])
def list_findings(
    session: ReadSessionDep,
    user: CurrentUser,
    org_id: Annotated[int | None, Query(ge=1, le=INT4_MAX)] = None,
    herb: Annotated[str | None, Query(max_length=40)] = None,
    category: Category | None = None,
    rule: Annotated[str | None, Query(max_length=60, description="exact rule id, e.g. phi.too-early")] = None,
    severity: Annotated[str | None, Query(pattern="^(hard|warning)$")] = None,
    since: Annotated[AwareDatetime | None, Query(description="event time from (inclusive), RFC 3339")] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="event time before (exclusive), RFC 3339")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[AuditFinding]:
    """Findings across the platform: PHI, daodi origin, failed QC, sulfur fumigation, mass balance, label
    clones; oldest event first."""
    items, total = service.list_findings(
        session,
        user,
        org_id=org_id,
        herb=herb,
        category=category,
        rule=rule,
        severity=severity,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
        clones=service.clone_source(),
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/compliance", response_model=list[ComplianceSummary])
def compliance_all(session: ReadSessionDep, user: CurrentUser) -> list[ComplianceSummary]:
    """The compliance summary of every organisation."""
    return service.compliance_all(session, user)


@router.get("/compliance/{org_id}", response_model=ComplianceSummary)
def compliance(
    session: ReadSessionDep, user: CurrentUser, org_id: Annotated[int, Path(ge=1, le=INT4_MAX)]
) -> ComplianceSummary:
    """Events, lots, findings by rule and severity, failed QC rate, open holds and recalls, last ledger
    index of one organisation."""
    return service.compliance(session, user, org_id)


@router.post("/holds", response_model=Affected, status_code=201)
def hold(session: SessionDep, ctx: Ctx, user: CurrentUser, data: AuditActionIn) -> Affected:
    """Put a lot on hold (an event on the ledger) and list every lot, unit and consignee downstream."""
    return service.hold_lot(session, user, data, log=ctx.log, now=_now())


@router.post("/recalls", response_model=Affected, status_code=201)
def recall(session: SessionDep, ctx: Ctx, user: CurrentUser, data: AuditActionIn) -> Affected:
    """Recall a lot and every lot made from it (an event on the ledger); returns everything affected."""
    return service.recall_lot(session, user, data, log=ctx.log, now=_now())


@router.get(
    "/lots/{code}/lineage.csv",
    response_class=Response,
    responses={200: {"content": {CSV: {}}, "description": "one row per event and lot of the lineage"}},
)
def lineage_csv(session: ReadSessionDep, user: CurrentUser, code: LotCode) -> Response:
    """The lot's full lineage as CSV (UTF-8 with BOM, formula-guarded)."""
    body = service.lineage_csv(session, user, code)
    return Response(body, media_type=CSV, headers=_attachment(f"lineage-{code}.csv"))


@router.get(
    "/lots/{code}/lineage.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "the lineage as a filterable workbook"}},
)
def lineage_xlsx(session: ReadSessionDep, user: CurrentUser, code: LotCode) -> Response:
    """The lot's full lineage as an XLSX workbook with a filterable header row."""
    body = service.lineage_xlsx(session, user, code)
    return Response(body, media_type=XLSX, headers=_attachment(f"lineage-{code}.xlsx"))


@router.get(
    "/lots/{code}/lineage.jsonld",
    response_class=JSONResponse,
    responses={200: {"content": {EPCIS: {}}, "description": "an EPCIS 2.0 EPCISDocument"}},
)
def lineage_epcis(session: ReadSessionDep, user: CurrentUser, code: LotCode) -> JSONResponse:
    """The lot's full lineage as an EPCIS 2.0 document."""
    body: dict[str, Any] = service.lineage_epcis(session, user, code, now=_now())
    return JSONResponse(body, media_type=EPCIS, headers=_attachment(f"lineage-{code}.jsonld"))
