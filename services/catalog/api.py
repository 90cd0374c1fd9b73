"""Catalog HTTP API: public reads; spec and region versions written by a quality officer (admin, quality)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from services.catalog import service
from services.catalog.models import (
    CODE_PATTERN,
    SPEC_NAME,
    FormIn,
    FormKind,
    FormPublic,
    HerbPublic,
    HerbRulesIn,
    RegionIn,
    RegionPublic,
    SeasonIn,
    SpecIn,
    SpecPublic,
    YieldIn,
)
from services.deps import Ctx, CurrentUser, ReadSessionDep, SessionDep
from services.fields import FORM_ID, HERB_ID, INT4_MAX
from services.pages import Limit, Offset, Page
from services.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"], responses=PROBLEM_RESPONSES)
HerbId = Annotated[str, Path(pattern=HERB_ID, description="herb id, e.g. `prunella`")]
FormId = Annotated[str, Path(pattern=FORM_ID, description="form id, e.g. `epimedium.fat-fried-shreds`")]
RegionCode = Annotated[str, Path(pattern=CODE_PATTERN, description="region code, e.g. `queshan-gi`")]
SpecName = Annotated[str, Query(pattern=SPEC_NAME, description="spec profile name")]
HerbFilter = Annotated[str | None, Query(pattern=HERB_ID, description="only this herb's")]


@router.get("/herbs", response_model=Page[HerbPublic])
def list_herbs(session: ReadSessionDep, limit: Limit = 50, offset: Offset = 0) -> Page[HerbPublic]:
    """The herbs with their harvest seasons and plausible yields."""
    items, total = service.list_herbs(session, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/herbs/{herb_id}", response_model=HerbPublic)
def get_herb(session: ReadSessionDep, herb_id: HerbId) -> HerbPublic:
    """One herb."""
    return service.get_herb(session, herb_id)


@router.put("/herbs/{herb_id}/seasons", response_model=HerbPublic)
def replace_seasons(
    session: SessionDep,
    ctx: Ctx,
    user: CurrentUser,
    herb_id: HerbId,
    seasons: Annotated[list[SeasonIn], Body(max_length=24)],
) -> HerbPublic:
    """Replace a herb's harvest seasons (admin or quality)."""
    return service.replace_seasons(session, ctx.log, user, herb_id, seasons, now=datetime.now(UTC))


@router.put("/herbs/{herb_id}/yields", response_model=HerbPublic)
def replace_yields(
    session: SessionDep,
    ctx: Ctx,
    user: CurrentUser,
    herb_id: HerbId,
    yields: Annotated[list[YieldIn], Body(max_length=50)],
) -> HerbPublic:
    """Replace a herb's plausible yields per step (admin or quality)."""
    return service.replace_yields(session, ctx.log, user, herb_id, yields, now=datetime.now(UTC))


@router.post("/herbs/{herb_id}/rules", response_model=HerbPublic, status_code=201)
def revise_herb_rules(
    session: SessionDep, ctx: Ctx, user: CurrentUser, herb_id: HerbId, data: HerbRulesIn
) -> HerbPublic:
    """Add a version of a herb's rules: minimum planting age (三七: 3 years) and harvest ceiling per mu (admin
    or quality). Harvests judged with an earlier version keep it (`details.herb_rules` of the event)."""
    return service.revise_herb_rules(session, ctx.log, user, herb_id, data, now=datetime.now(UTC))


@router.post("/forms", response_model=FormPublic, status_code=201)
def add_form(session: SessionDep, ctx: Ctx, user: CurrentUser, data: FormIn) -> FormPublic:
    """Add a form of a herb with its GTIN-14 (admin or quality)."""
    return service.add_form(session, ctx.log, user, data, now=datetime.now(UTC))


@router.get("/forms", response_model=Page[FormPublic])
def list_forms(
    session: ReadSessionDep,
    herb: HerbFilter = None,
    kind: FormKind | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[FormPublic]:
    """Forms (seed, seedling, fresh, dried, decoction pieces) with their GTIN-14."""
    items, total = service.list_forms(session, herb=herb, kind=kind, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/forms/{form_id}", response_model=FormPublic)
def get_form(session: ReadSessionDep, form_id: FormId) -> FormPublic:
    """One form."""
    return service.get_form(session, form_id)


@router.get("/regions", response_model=Page[RegionPublic])
def list_regions(session: ReadSessionDep, limit: Limit = 50, offset: Offset = 0) -> Page[RegionPublic]:
    """The current version of every daodi/GI region (GeoJSON, WGS84)."""
    items, total = service.list_regions(session, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/regions/{code}", response_model=RegionPublic)
def get_region(session: ReadSessionDep, code: RegionCode) -> RegionPublic:
    """The current version of a region."""
    return service.get_region(session, code)


@router.get("/regions/{code}/versions", response_model=Page[RegionPublic])
def region_versions(
    session: ReadSessionDep, code: RegionCode, limit: Limit = 50, offset: Offset = 0
) -> Page[RegionPublic]:
    """Every version of a region, oldest first."""
    items, total = service.region_versions(session, code, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/regions/{code}/versions/{version}", response_model=RegionPublic)
def get_region_version(
    session: ReadSessionDep, code: RegionCode, version: Annotated[int, Path(ge=1, le=INT4_MAX)]
) -> RegionPublic:
    """One version of a region."""
    return service.get_region(session, code, version)


@router.put("/regions/{code}", response_model=RegionPublic, status_code=201)
def revise_region(
    session: SessionDep, ctx: Ctx, user: CurrentUser, code: RegionCode, data: RegionIn
) -> RegionPublic:
    """Add a version of a region (admin or quality); earlier versions stay."""
    return service.revise_region(session, ctx.log, user, code, data, now=datetime.now(UTC))


@router.get("/specs", response_model=Page[SpecPublic])
def list_specs(
    session: ReadSessionDep,
    herb: HerbFilter = None,
    name: Annotated[str | None, Query(pattern=SPEC_NAME)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[SpecPublic]:
    """The current version of every spec profile."""
    items, total = service.list_specs(session, herb=herb, name=name, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/specs/{form_id}", response_model=SpecPublic)
def current_spec(
    session: ReadSessionDep, form_id: FormId, name: SpecName = service.DEFAULT_SPEC
) -> SpecPublic:
    """The current version of a form's spec profile."""
    return service.current_spec(session, form_id, name)


@router.get("/specs/{form_id}/versions", response_model=Page[SpecPublic])
def spec_versions(
    session: ReadSessionDep,
    form_id: FormId,
    name: SpecName = service.DEFAULT_SPEC,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[SpecPublic]:
    """Every version of a form's spec profile, oldest first."""
    items, total = service.spec_versions(session, form_id, name, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/specs/{form_id}/versions/{version}", response_model=SpecPublic)
def get_spec_version(
    session: ReadSessionDep,
    form_id: FormId,
    version: Annotated[int, Path(ge=1, le=INT4_MAX)],
    name: SpecName = service.DEFAULT_SPEC,
) -> SpecPublic:
    """One version of a form's spec profile."""
    return service.get_spec_version(session, form_id, name, version)


@router.post("/specs/{form_id}/versions", response_model=SpecPublic, status_code=201)
def revise_spec(
    session: SessionDep, ctx: Ctx, user: CurrentUser, form_id: FormId, data: SpecIn
) -> SpecPublic:
    """Add a version of a spec profile (admin or quality); lots keep the version they were judged with."""
    return service.revise_spec(session, ctx.log, user, form_id, data, now=datetime.now(UTC))
