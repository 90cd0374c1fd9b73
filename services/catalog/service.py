"""Catalog use cases: load the versioned data files, read the catalog, revise specs and regions."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any, TypeVar

from sqlalchemy import and_, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ledger.entry import Draft
from ledger.log import Log
from services.access import CATALOG_EDITORS, require_role
from services.catalog.models import (
    CatalogSource,
    Form,
    FormIn,
    FormPublic,
    HarvestSeason,
    Herb,
    HerbPublic,
    HerbRuleSet,
    HerbRulesIn,
    HerbRulesPublic,
    Region,
    RegionIn,
    RegionPublic,
    SeasonIn,
    SeasonPublic,
    SpecIn,
    SpecProfile,
    SpecPublic,
    YieldIn,
    YieldPublic,
    YieldStep,
)
from services.catalog.rules import HerbRules, Limit, Season, YieldRange, gtin_problem
from services.errors import ConflictError, InvalidInputError, NotFoundError
from services.geometry import Area, parse_geometry
from services.ledger.service import append_entries
from services.pages import fetch_page
from services.registry.models import Principal
from services.registry.rules import admin_code_problem

CATALOG_FILE = "catalog.json"
DEFAULT_SPEC = "ChP-2020"
FORM_KINDS = ("seed", "seedling", "fresh", "dried", "piece")
GS1_CHINA_PREFIXES = tuple(str(p) for p in range(690, 700))


# -- loading the data files -------------------------------------------------------------------------------


def data_file(name: str) -> tuple[dict[str, Any], str]:
    """A packaged data file under services/data and its SHA-256 (hex)."""
    raw = resources.files("services").joinpath("data", name).read_bytes()
    doc: dict[str, Any] = json.loads(raw)
    return doc, hashlib.sha256(raw).hexdigest()


def _need(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise InvalidInputError(f"{where}.{key} is missing", field=f"{where}.{key}", rule="catalog.data")
    return obj[key]


def load_catalog(session: Session, doc: dict[str, Any], sha256: str, *, now: datetime) -> bool:
    """Load one version of the catalog data file; False when that version was loaded already.

    Herbs, forms, seasons and yields are updated in place; a region or spec whose content changed gets a new
    version, so earlier verdicts keep theirs.
    """
    source, version = str(_need(doc, "source", "$")), int(_need(doc, "version", "$"))
    if session.get(CatalogSource, (source, version)) is not None:
        return False
    actor = f"data:{source}@{version}"
    prefixes = [str(p) for p in doc.get("gs1_prefixes", [])]
    for i, raw in enumerate(_need(doc, "regions", "$")):
        where = f"regions[{i}]"
        data = RegionIn.model_validate({k: raw.get(k) for k in RegionIn.model_fields if k in raw})
        _add_region_version(
            session, str(_need(raw, "code", where)), data, actor, now, field=f"{where}.geometry"
        )
    session.flush()
    herbs = _need(doc, "herbs", "$")
    for i, raw in enumerate(herbs):
        where = f"herbs[{i}]"
        region = str(_need(raw, "region", where))
        if _current_region(session, region) is None:
            raise InvalidInputError(
                f"unknown region {region!r}", field=f"{where}.region", rule="catalog.data"
            )
        herb = Herb(
            id=str(_need(raw, "id", where)),
            name_zh=raw["name_zh"],
            name_en=raw["name_en"],
            latin=raw["latin"],
            species=raw["species"],
            part=raw["part"],
            region_code=region,
        )
        session.merge(herb)
    session.flush()
    spec_name = str(doc.get("spec_name", DEFAULT_SPEC))
    for i, raw in enumerate(_need(doc, "forms", "$")):
        where = f"forms[{i}]"
        gtin = str(_need(raw, "gtin", where))
        problem = gtin_problem(gtin, prefixes)
        if problem:
            raise InvalidInputError(
                f"{where}.gtin {gtin}: {problem}", field=f"{where}.gtin", rule="gtin.check"
            )
        if raw.get("kind") not in FORM_KINDS or session.get(Herb, raw.get("herb")) is None:
            raise InvalidInputError(f"{where}: unknown kind or herb", field=where, rule="catalog.data")
        session.merge(
            Form(
                id=raw["id"],
                herb_id=raw["herb"],
                kind=raw["kind"],
                name_zh=raw["name_zh"],
                name_en=raw["name_en"],
                gtin=gtin,
                gbt31774=raw.get("gbt31774"),
                method=raw.get("method"),
                auxiliaries=list(raw.get("auxiliaries", [])),
            )
        )
        session.flush()
        if "spec" in raw:
            spec = SpecIn(
                name=spec_name, limits=raw["spec"], reason=f"loaded from {source} version {version}"
            )
            _add_spec_version(session, raw["id"], spec, actor, now, only_if_changed=True)
    for i, raw in enumerate(herbs):
        seasons = [SeasonIn.model_validate(x) for x in raw.get("seasons", [])]
        yields = [
            YieldIn.model_validate({**y, "from_form": y.get("from"), "to_form": y.get("to")})
            for y in raw.get("yields", [])
        ]
        _replace_seasons(session, raw["id"], seasons)
        _replace_yields(session, raw["id"], yields, field=f"herbs[{i}].yields")
        if "rules" in raw:
            rules = HerbRulesIn.model_validate(raw["rules"])
            _add_rules_version(session, raw["id"], rules, actor, now)
    session.add(CatalogSource(name=source, version=version, sha256=sha256, loaded_at=now))
    session.flush()
    return True


# -- herbs and forms --------------------------------------------------------------------------------------


def _current_rules(session: Session, herb_id: str) -> HerbRuleSet | None:
    return session.execute(
        select(HerbRuleSet)
        .where(HerbRuleSet.herb_id == herb_id)
        .order_by(col(HerbRuleSet.version).desc())
        .limit(1)
    ).scalar_one_or_none()


def _add_rules_version(
    session: Session, herb_id: str, data: HerbRulesIn, actor: str, now: datetime
) -> HerbRuleSet | None:
    """A new version of a herb's rules, or None when they are unchanged."""
    current = _current_rules(session, herb_id)
    values = (data.min_planting_years, data.max_fresh_kg_per_mu, data.note)
    if (
        current is not None
        and (current.min_planting_years, current.max_fresh_kg_per_mu, current.note) == values
    ):
        return None
    row = HerbRuleSet(
        herb_id=herb_id,
        version=1 if current is None else current.version + 1,
        min_planting_years=data.min_planting_years,
        max_fresh_kg_per_mu=data.max_fresh_kg_per_mu,
        note=data.note,
        created_at=now,
        created_by=actor,
    )
    return _add_version(session, row)


_Versioned = TypeVar("_Versioned", HerbRuleSet, SpecProfile)


def _add_version(session: Session, row: _Versioned) -> _Versioned:
    """Stage a new version row; ConflictError when a concurrent edit took its version number first."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError("a concurrent edit created this version first; retry", field="version") from exc
    return row


def herb_rules(session: Session, herb_id: str) -> HerbRules:
    """The herb's current data-driven rules (minimum planting age, yield ceiling); empty when it has none."""
    row = _current_rules(session, herb_id)
    if row is None:
        return HerbRules(herb_id)
    return HerbRules(
        herb_id,
        row.version,
        row.min_planting_years,
        None if row.max_fresh_kg_per_mu is None else Decimal(str(row.max_fresh_kg_per_mu)),
    )


def revise_herb_rules(
    session: Session, log: Log, principal: Principal, herb_id: str, data: HerbRulesIn, *, now: datetime
) -> HerbPublic:
    """Add a version of a herb's rules (admin or quality); recorded on the ledger."""
    require_role(principal, CATALOG_EDITORS, "editing a herb's rules")
    herb = session.get(Herb, herb_id)
    if herb is None:
        raise NotFoundError(f"no herb {herb_id!r}", field="herb_id")
    row = _add_rules_version(session, herb_id, data, principal.actor, now)
    if row is None:
        raise ConflictError(
            "the rules are unchanged: no new version", field="rules", rule="catalog.unchanged"
        )
    body = {"herb": herb_id, "version": row.version, **data.model_dump(exclude_none=True)}
    append_entries(session, log, [Draft.of("catalog.herb-rules", now, principal.actor, body)])
    return _herb_public(session, herb)


def _herb_public(session: Session, herb: Herb) -> HerbPublic:
    seasons = session.execute(
        select(HarvestSeason).where(HarvestSeason.herb_id == herb.id).order_by(col(HarvestSeason.id))
    ).scalars()
    yields = session.execute(
        select(YieldStep).where(YieldStep.herb_id == herb.id).order_by(col(YieldStep.id))
    ).scalars()
    return HerbPublic(
        **herb.model_dump(),
        seasons=[
            SeasonPublic(name=s.name, start_month=s.start_month, end_month=s.end_month, note=s.note)
            for s in seasons
        ],
        yields=[
            YieldPublic(
                step=y.step,
                from_form=y.from_form,
                to_form=y.to_form,
                min_ratio=y.min_ratio,
                max_ratio=y.max_ratio,
                note=y.note,
            )
            for y in yields
        ],
        rules=None
        if (rules := _current_rules(session, herb.id)) is None
        else HerbRulesPublic.model_validate(rules),
    )


def list_herbs(session: Session, *, limit: int, offset: int) -> tuple[list[HerbPublic], int]:
    rows, total = fetch_page(session, select(Herb).order_by(col(Herb.id)), limit, offset)
    return [_herb_public(session, h) for h in rows], total


def get_herb(session: Session, herb_id: str) -> HerbPublic:
    herb = session.get(Herb, herb_id)
    if herb is None:
        raise NotFoundError(f"no herb {herb_id!r}", field="herb_id")
    return _herb_public(session, herb)


def require_herb(session: Session, herb_id: str, *, field: str = "herb") -> Herb:
    """The herb named in a request body; InvalidInputError (rule catalog.unknown-herb) when unknown."""
    herb = session.get(Herb, herb_id)
    if herb is None:
        raise InvalidInputError(f"unknown herb {herb_id!r}", field=field, rule="catalog.unknown-herb")
    return herb


def require_form(session: Session, form_id: str, *, field: str = "form") -> Form:
    """The form named in a request body; InvalidInputError (rule catalog.unknown-form) when unknown."""
    form = session.get(Form, form_id)
    if form is None:
        raise InvalidInputError(f"unknown form {form_id!r}", field=field, rule="catalog.unknown-form")
    return form


def list_forms(
    session: Session, *, herb: str | None, kind: str | None, limit: int, offset: int
) -> tuple[list[FormPublic], int]:
    statement = select(Form).order_by(col(Form.herb_id), col(Form.id))
    if herb is not None:
        statement = statement.where(Form.herb_id == herb)
    if kind is not None:
        statement = statement.where(Form.kind == kind)
    rows, total = fetch_page(session, statement, limit, offset)
    return [FormPublic.model_validate(f) for f in rows], total


def get_form(session: Session, form_id: str) -> FormPublic:
    form = session.get(Form, form_id)
    if form is None:
        raise NotFoundError(f"no form {form_id!r}", field="form_id")
    return FormPublic.model_validate(form)


def _replace_seasons(session: Session, herb_id: str, seasons: list[SeasonIn]) -> None:
    for old in session.exec(select(HarvestSeason).where(HarvestSeason.herb_id == herb_id)):
        session.delete(old)
    session.flush()
    for season in seasons:
        session.add(HarvestSeason(herb_id=herb_id, **season.model_dump()))
    session.flush()


def _replace_yields(session: Session, herb_id: str, yields: list[YieldIn], *, field: str = "yields") -> None:
    seen: set[tuple[str, str]] = set()
    for i, step in enumerate(yields):
        for end in ("from_form", "to_form"):
            form = session.get(Form, getattr(step, end))
            if form is None or form.herb_id != herb_id:
                raise InvalidInputError(
                    f"{getattr(step, end)!r} is not a form of {herb_id}",
                    field=f"{field}[{i}].{end}",
                    rule="catalog.unknown-form",
                )
        if (step.from_form, step.to_form) in seen:
            raise InvalidInputError(
                "a step between these two forms is listed twice",
                field=f"{field}[{i}]",
                rule="catalog.duplicate",
            )
        seen.add((step.from_form, step.to_form))
    for old in session.exec(select(YieldStep).where(YieldStep.herb_id == herb_id)):
        session.delete(old)
    session.flush()
    for step in yields:
        session.add(YieldStep(herb_id=herb_id, **step.model_dump()))
    session.flush()


def replace_seasons(
    session: Session, log: Log, principal: Principal, herb_id: str, seasons: list[SeasonIn], *, now: datetime
) -> HerbPublic:
    """Replace a herb's harvest seasons (admin or quality); the change is recorded on the ledger."""
    require_role(principal, CATALOG_EDITORS, "editing harvest seasons")
    herb = session.get(Herb, herb_id)
    if herb is None:
        raise NotFoundError(f"no herb {herb_id!r}", field="herb_id")
    _replace_seasons(session, herb_id, seasons)
    body = {"herb": herb_id, "seasons": [s.model_dump(exclude_none=True) for s in seasons]}
    append_entries(session, log, [Draft.of("catalog.seasons", now, principal.actor, body)])
    return _herb_public(session, herb)


def replace_yields(
    session: Session, log: Log, principal: Principal, herb_id: str, yields: list[YieldIn], *, now: datetime
) -> HerbPublic:
    """Replace a herb's plausible yields per step (admin or quality); recorded on the ledger."""
    require_role(principal, CATALOG_EDITORS, "editing plausible yields")
    herb = session.get(Herb, herb_id)
    if herb is None:
        raise NotFoundError(f"no herb {herb_id!r}", field="herb_id")
    _replace_yields(session, herb_id, yields)
    body = {"herb": herb_id, "yields": [y.model_dump(exclude_none=True) for y in yields]}
    append_entries(session, log, [Draft.of("catalog.yields", now, principal.actor, body)])
    return _herb_public(session, herb)


def add_form(session: Session, log: Log, principal: Principal, data: FormIn, *, now: datetime) -> FormPublic:
    """Add a form of a herb (admin or quality): known herb, valid GTIN-14 with a GS1 China prefix, unique."""
    require_role(principal, CATALOG_EDITORS, "adding a form")
    require_herb(session, data.herb_id, field="herb_id")
    if not data.id.startswith(data.herb_id + "."):
        raise InvalidInputError(
            f"a form id starts with its herb: {data.herb_id}.", field="id", rule="catalog.form-id"
        )
    problem = gtin_problem(data.gtin, GS1_CHINA_PREFIXES)
    if problem:
        raise InvalidInputError(f"gtin: {problem}", field="gtin", rule="gtin.check")
    if session.get(Form, data.id) is not None:
        raise ConflictError(f"form {data.id} exists", field="id", rule="catalog.duplicate")
    if session.exec(select(Form).where(Form.gtin == data.gtin)).first() is not None:
        raise ConflictError(f"GTIN {data.gtin} is taken", field="gtin", rule="catalog.duplicate")
    form = Form(**data.model_dump())
    session.add(form)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(
            "this form or GTIN was added concurrently", field="id", rule="catalog.duplicate"
        ) from exc
    body = {
        "form": form.id,
        "herb": form.herb_id,
        "kind": form.kind,
        "gtin": form.gtin,
        "name_zh": form.name_zh,
    }
    append_entries(session, log, [Draft.of("catalog.form", now, principal.actor, body)])
    return FormPublic.model_validate(form)


def seasons_of(session: Session, herb_id: str) -> list[Season]:
    """The herb's harvest seasons as rule values."""
    rows = session.execute(select(HarvestSeason).where(HarvestSeason.herb_id == herb_id)).scalars()
    return [Season(r.start_month, r.end_month, r.name) for r in rows]


def yield_range(session: Session, from_form: str, to_form: str) -> YieldRange | None:
    """The plausible yield of the step from one form to another, if the catalog knows one."""
    row = session.execute(
        select(YieldStep).where(YieldStep.from_form == from_form, YieldStep.to_form == to_form)
    ).scalar_one_or_none()
    return None if row is None else YieldRange(row.min_ratio, row.max_ratio, row.step)


# -- regions ----------------------------------------------------------------------------------------------


def _current_region(session: Session, code: str) -> Region | None:
    return session.execute(
        select(Region).where(Region.code == code).order_by(col(Region.version).desc()).limit(1)
    ).scalar_one_or_none()


def current_regions(session: Session) -> list[Region]:
    """The latest version of every region."""
    latest = select(func.max(Region.version).label("v"), Region.code).group_by(Region.code).subquery()
    statement = (
        select(Region)
        .join(latest, and_(col(Region.code) == latest.c.code, col(Region.version) == latest.c.v))
        .order_by(col(Region.code))
    )
    return list(session.execute(statement).scalars())


def region_area(region: Region) -> Area:
    """The validated geometry of a stored region."""
    return parse_geometry(region.geometry, "geometry", allow_multi=True)


def list_regions(session: Session, *, limit: int, offset: int) -> tuple[list[RegionPublic], int]:
    rows = current_regions(session)
    return [RegionPublic.model_validate(r) for r in rows[offset : offset + limit]], len(rows)


def get_region(session: Session, code: str, version: int | None = None) -> RegionPublic:
    if version is None:
        row = _current_region(session, code)
    else:
        row = session.execute(
            select(Region).where(Region.code == code, Region.version == version)
        ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(
            f"no region {code!r}" + ("" if version is None else f" version {version}"), field="code"
        )
    return RegionPublic.model_validate(row)


def region_versions(
    session: Session, code: str, *, limit: int, offset: int
) -> tuple[list[RegionPublic], int]:
    statement = select(Region).where(Region.code == code).order_by(col(Region.version))
    rows, total = fetch_page(session, statement, limit, offset)
    if total == 0:
        raise NotFoundError(f"no region {code!r}", field="code")
    return [RegionPublic.model_validate(r) for r in rows], total


def _add_region_version(
    session: Session, code: str, data: RegionIn, actor: str, now: datetime, *, field: str = "geometry"
) -> Region | None:
    area = parse_geometry(data.geometry, field, allow_multi=True)
    problem = admin_code_problem(data.admin_code)
    if problem:
        raise InvalidInputError(problem, field="admin_code", rule="admin-code.format")
    current = _current_region(session, code)
    geometry = area.to_geojson()
    if current is not None and (
        current.geometry == geometry
        and (current.kind, current.admin_code, current.name_zh, current.name_en, current.note)
        == (data.kind, data.admin_code, data.name_zh, data.name_en, data.note)
    ):
        return None
    row = Region(
        code=code,
        version=1 if current is None else current.version + 1,
        kind=data.kind,
        admin_code=data.admin_code,
        name_zh=data.name_zh,
        name_en=data.name_en,
        geometry=geometry,
        note=data.note,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    return row


def revise_region(
    session: Session, log: Log, principal: Principal, code: str, data: RegionIn, *, now: datetime
) -> RegionPublic:
    """Add a version of a region (a quality officer's edit); the previous versions stay."""
    require_role(principal, CATALOG_EDITORS, "editing a region")
    if _current_region(session, code) is None:
        raise NotFoundError(f"no region {code!r}", field="code")
    row = _add_region_version(session, code, data, principal.actor, now)
    if row is None:
        raise ConflictError(
            "the region is unchanged: no new version", field="geometry", rule="catalog.unchanged"
        )
    session.flush()
    body = {
        "code": code,
        "version": row.version,
        "kind": row.kind,
        "admin_code": row.admin_code,
        "geometry": row.geometry,
    }
    [appended] = append_entries(session, log, [Draft.of("catalog.region", now, principal.actor, body)])
    row.ledger_index = appended.index
    session.flush()
    return RegionPublic.model_validate(row)


# -- spec profiles ----------------------------------------------------------------------------------------


def _current_spec(session: Session, form_id: str, name: str) -> SpecProfile | None:
    return session.execute(
        select(SpecProfile)
        .where(SpecProfile.form_id == form_id, SpecProfile.name == name)
        .order_by(col(SpecProfile.version).desc())
        .limit(1)
    ).scalar_one_or_none()


def _add_spec_version(
    session: Session, form_id: str, data: SpecIn, actor: str, now: datetime, *, only_if_changed: bool
) -> SpecProfile | None:
    analytes = [limit.analyte for limit in data.limits]
    duplicate = next((a for a in analytes if analytes.count(a) > 1), None)
    if duplicate is not None:
        raise InvalidInputError(
            f"analyte {duplicate!r} is listed twice", field="limits", rule="spec.duplicate-analyte"
        )
    limits = [limit.model_dump(exclude_none=True) for limit in data.limits]
    current = _current_spec(session, form_id, data.name)
    if only_if_changed and current is not None and current.limits == limits:
        return None
    row = SpecProfile(
        form_id=form_id,
        name=data.name,
        version=1 if current is None else current.version + 1,
        limits=limits,
        reason=data.reason,
        created_at=now,
        created_by=actor,
    )
    return _add_version(session, row)


def revise_spec(
    session: Session, log: Log, principal: Principal, form_id: str, data: SpecIn, *, now: datetime
) -> SpecPublic:
    """Add a version of a form's spec profile; lots judged with an older version keep it."""
    require_role(principal, CATALOG_EDITORS, "editing a spec profile")
    if session.get(Form, form_id) is None:
        raise NotFoundError(f"no form {form_id!r}", field="form_id")
    row = _add_spec_version(session, form_id, data, principal.actor, now, only_if_changed=False)
    assert row is not None and row.id is not None
    body = {
        "form": form_id,
        "name": row.name,
        "version": row.version,
        "limits": row.limits,
        "reason": row.reason,
    }
    [appended] = append_entries(session, log, [Draft.of("catalog.spec", now, principal.actor, body)])
    row.ledger_index = appended.index
    session.flush()
    return SpecPublic.model_validate(row)


def current_spec(session: Session, form_id: str, name: str = DEFAULT_SPEC) -> SpecPublic:
    """The spec profile a new judgement of this form uses."""
    row = _current_spec(session, form_id, name)
    if row is None:
        raise NotFoundError(f"form {form_id!r} has no spec profile {name!r}", field="form_id")
    return SpecPublic.model_validate(row)


def get_spec(session: Session, spec_id: int) -> SpecPublic:
    """A spec version by id (what a lot stores)."""
    row = session.get(SpecProfile, spec_id)
    if row is None:
        raise NotFoundError(f"no spec profile {spec_id}", field="spec_id")
    return SpecPublic.model_validate(row)


def get_spec_version(session: Session, form_id: str, name: str, version: int) -> SpecPublic:
    row = session.execute(
        select(SpecProfile).where(
            SpecProfile.form_id == form_id, SpecProfile.name == name, SpecProfile.version == version
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"form {form_id!r} has no {name} version {version}", field="version")
    return SpecPublic.model_validate(row)


def spec_versions(
    session: Session, form_id: str, name: str, *, limit: int, offset: int
) -> tuple[list[SpecPublic], int]:
    statement = (
        select(SpecProfile)
        .where(SpecProfile.form_id == form_id, SpecProfile.name == name)
        .order_by(col(SpecProfile.version))
    )
    rows, total = fetch_page(session, statement, limit, offset)
    if total == 0:
        raise NotFoundError(f"form {form_id!r} has no spec profile {name!r}", field="form_id")
    return [SpecPublic.model_validate(r) for r in rows], total


def list_specs(
    session: Session, *, herb: str | None, name: str | None, limit: int, offset: int
) -> tuple[list[SpecPublic], int]:
    """The current version of every spec profile, optionally of one herb's forms."""
    latest = (
        select(func.max(SpecProfile.version).label("v"), SpecProfile.form_id, SpecProfile.name)
        .group_by(SpecProfile.form_id, SpecProfile.name)
        .subquery()
    )
    statement = select(SpecProfile).join(
        latest,
        and_(
            col(SpecProfile.form_id) == latest.c.form_id,
            col(SpecProfile.name) == latest.c.name,
            col(SpecProfile.version) == latest.c.v,
        ),
    )
    if herb is not None:
        statement = statement.join(Form, col(Form.id) == col(SpecProfile.form_id)).where(Form.herb_id == herb)
    if name is not None:
        statement = statement.where(SpecProfile.name == name)
    rows, total = fetch_page(
        session, statement.order_by(col(SpecProfile.form_id), col(SpecProfile.name)), limit, offset
    )
    return [SpecPublic.model_validate(r) for r in rows], total


def limits_of(spec: SpecPublic) -> list[Limit]:
    """A spec profile's limits as rule values."""
    return [
        Limit(
            analyte=raw["analyte"],
            unit=raw["unit"],
            min=raw.get("min"),
            max=raw.get("max"),
            required=bool(raw.get("required", True)),
            name_en=raw.get("name_en", ""),
            name_zh=raw.get("name_zh", ""),
        )
        for raw in spec.limits
    ]
