"""Label endpoints: issue, list, look up, void, QR images and printable sheets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from services.deps import Ctx, CurrentUser, ReadSessionDep, SessionDep
from services.fields import Text
from services.labels import render, service
from services.labels.models import IssueIn, LabelPublic
from services.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/labels", tags=["labels"], responses=PROBLEM_RESPONSES)
Gtin = Annotated[str, Path(pattern=r"^[0-9]{14}$")]
Serial = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,20}$")]


class VoidIn(BaseModel):
    reason: Text = Field(min_length=1, max_length=200, examples=["torn at the packing line"])


@router.post("", response_model=list[LabelPublic], status_code=201)
def issue(data: IssueIn, session: SessionDep, ctx: Ctx, user: CurrentUser) -> list[LabelPublic]:
    """Pre-issue signed unit labels for a form (field tags: QR error correction Q; cartons: M)."""
    labels = service.issue_labels(
        session,
        ctx.log,
        user,
        data,
        signer=ctx.keys.label_signer,
        base_url=ctx.settings.public_base_url,
        now=datetime.now(UTC),
    )
    return [LabelPublic.model_validate(label, from_attributes=True) for label in labels]


@router.get("/{gtin}/{serial}", response_model=LabelPublic)
def get(gtin: Gtin, serial: Serial, session: ReadSessionDep) -> LabelPublic:
    """A label's status (issued, activated, voided) and the lot it is bound to."""
    return LabelPublic.model_validate(service.find_label(session, gtin, serial), from_attributes=True)


@router.post("/{gtin}/{serial}/void", response_model=LabelPublic)
def void(
    gtin: Gtin, serial: Serial, data: VoidIn, session: SessionDep, ctx: Ctx, user: CurrentUser
) -> LabelPublic:
    """Void a label; scans of it then answer 410 Gone."""
    return service.void_label(session, ctx.log, user, gtin, serial, data.reason, now=datetime.now(UTC))


@router.get(
    "/{gtin}/{serial}/qr",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
)
def qr(
    gtin: Gtin,
    serial: Serial,
    session: ReadSessionDep,
    format: Annotated[str, Query(pattern="^(png|svg)$")] = "png",
) -> Response:
    """The label's QR code as PNG or SVG."""
    label = service.find_label(session, gtin, serial)
    level: render.Level = "Q" if label.kind == "field" else "M"
    if format == "svg":
        return Response(render.svg(label.uri, level), media_type="image/svg+xml")
    return Response(render.png(label.uri, level), media_type="image/png")
