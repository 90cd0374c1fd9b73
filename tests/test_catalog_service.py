"""Catalog use cases on a fresh SQLite file: data loading, reads, versioned specs and regions."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from ledger.entry import parse_entry
from ledger.log import Log
from services.catalog import service
from services.catalog.models import Form, FormIn, LimitIn, RegionIn, SeasonIn, SpecIn, SpecProfile, YieldIn
from services.catalog.rules import YieldRange, gtin_problem, qc_findings
from services.db import ledger_store, make_engine
from services.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from services.geometry import parse_geometry, point_in_area
from services.migrate import load_reference_data, upgrade
from services.registry.models import Principal
from services.settings import Settings

NOW = datetime(2026, 6, 12, 8, 0, tzinfo=UTC)
QUALITY = Principal(user_id=7, org_id=1, roles=frozenset({"quality"}))
GROWER = Principal(user_id=8, org_id=2, roles=frozenset({"grower"}))


@pytest.fixture
def db(settings: Settings) -> Iterator[tuple[Session, Log]]:
    upgrade(settings, now=NOW)
    engine = make_engine(settings.database_url)
    log = Log(ledger_store(settings.database_url))
    with Session(engine) as session:
        yield session, log
    log.store.close()  # type: ignore[attr-defined]
    engine.dispose()


def test_every_herb_has_its_forms_region_seasons_and_yields(db: tuple[Session, Log]) -> None:
    session, _ = db
    herbs, total = service.list_herbs(session, limit=10, offset=0)
    assert total == 3
    by_id = {h.id: h for h in herbs}
    assert by_id["prunella"].region_code == "queshan-gi"
    assert by_id["epimedium"].region_code == "pingyu-daodi"
    assert by_id["notoginseng"].region_code == "wenshan-gi"
    assert all(h.seasons and h.yields for h in herbs)
    forms, _ = service.list_forms(session, herb=None, kind="piece", limit=50, offset=0)
    assert {f.name_zh for f in forms} == {"夏枯草", "淫羊藿丝", "炙淫羊藿", "三七粉"}
    for herb in by_id:
        kinds = {f.kind for f in service.list_forms(session, herb=herb, kind=None, limit=50, offset=0)[0]}
        assert {"seed", "seedling", "fresh", "dried", "piece"} <= kinds


def test_every_gtin_is_valid_unique_and_in_the_china_prefix_range(db: tuple[Session, Log]) -> None:
    session, _ = db
    forms = list(session.execute(select(Form)).scalars())
    prefixes = [str(p) for p in range(690, 700)]
    assert all(gtin_problem(f.gtin, prefixes) is None for f in forms)
    assert len({f.gtin for f in forms}) == len(forms)


def test_regions_cover_the_real_county_and_prefecture_locations(db: tuple[Session, Log]) -> None:
    session, _ = db
    expected = {
        "queshan-gi": ("411725", (114.0, 32.8)),
        "pingyu-daodi": ("411723", (114.6, 32.95)),
        "wenshan-gi": ("532600", (104.2, 23.4)),
    }
    for code, (admin_code, point) in expected.items():
        region = service.get_region(session, code)
        assert region.admin_code == admin_code
        assert point_in_area(point, parse_geometry(region.geometry, "g", allow_multi=True))
    queshan = parse_geometry(service.get_region(session, "queshan-gi").geometry, "g", allow_multi=True)
    assert not point_in_area((114.6, 32.95), queshan)  # Pingyu is not in Queshan


def test_spec_limits_come_from_the_data_file(db: tuple[Session, Log]) -> None:
    session, _ = db
    spec = service.current_spec(session, "notoginseng.powder")
    limits = {lim.analyte: lim for lim in service.limits_of(spec)}
    assert limits["so2"].max == 150.0
    assert limits["r1_rg1_rb1"].min == 5.0
    assert spec.name == "ChP-2020" and spec.version == 1


def test_loading_the_same_data_version_twice_changes_nothing(db: tuple[Session, Log]) -> None:
    session, _ = db
    before = session.execute(select(func.count()).select_from(SpecProfile)).scalar_one()
    load_reference_data(session, now=NOW)
    session.flush()
    assert session.execute(select(func.count()).select_from(SpecProfile)).scalar_one() == before


def test_a_new_data_version_with_changed_limits_adds_a_spec_version(db: tuple[Session, Log]) -> None:
    session, _ = db
    doc, _ = service.data_file(service.CATALOG_FILE)
    doc = copy.deepcopy(doc)
    doc["version"] += 1
    form = next(f for f in doc["forms"] if f["id"] == "prunella.dried")
    next(lim for lim in form["spec"] if lim["analyte"] == "moisture")["max"] = 13.0
    assert service.load_catalog(session, doc, "x" * 64, now=NOW)
    assert service.current_spec(session, "prunella.dried").version == 2
    assert service.current_spec(session, "prunella.prunella-piece").version == 1
    old = service.get_spec_version(session, "prunella.dried", "ChP-2020", 1)
    assert next(lim for lim in old.limits if lim["analyte"] == "moisture")["max"] == 14.0


def test_a_data_file_with_a_bad_gtin_is_refused(db: tuple[Session, Log]) -> None:
    session, _ = db
    doc, _ = service.data_file(service.CATALOG_FILE)
    doc = copy.deepcopy(doc)
    doc["version"] += 1
    doc["forms"][0]["gtin"] = "06901234000019"
    with pytest.raises(InvalidInputError) as caught:
        service.load_catalog(session, doc, "y" * 64, now=NOW)
    assert caught.value.field == "forms[0].gtin"


def spec_in(moisture_max: float) -> SpecIn:
    return SpecIn(
        limits=[
            LimitIn(analyte="moisture", unit="%", max=moisture_max),
            LimitIn(analyte="so2", unit="mg/kg", max=150.0),
        ],
        reason="corrected after reading the monograph",
    )


def test_a_quality_officer_revising_a_spec_adds_a_version_and_keeps_the_old_one(
    db: tuple[Session, Log],
) -> None:
    session, log = db
    first = service.current_spec(session, "epimedium.shreds")
    revised = service.revise_spec(session, log, QUALITY, "epimedium.shreds", spec_in(11.0), now=NOW)
    session.commit()
    assert revised.version == first.version + 1 and revised.id != first.id
    assert service.current_spec(session, "epimedium.shreds").id == revised.id
    # A lot judged with the first version still reads the same limits by id.
    assert service.get_spec(session, first.id).limits == first.limits
    versions, total = service.spec_versions(session, "epimedium.shreds", "ChP-2020", limit=10, offset=0)
    assert [v.version for v in versions] == [1, 2] and total == 2
    # The revision is on the ledger with its limits.
    assert revised.ledger_index is not None
    entry = parse_entry(log.entry(revised.ledger_index))
    assert entry.kind == "catalog.spec" and entry.actor == "user:7"
    judged = qc_findings(service.limits_of(revised), {"moisture": 11.5, "so2": 10.0})
    assert [f.rule for f in judged] == ["qc.above-max"]


def test_a_grower_cannot_edit_a_spec(db: tuple[Session, Log]) -> None:
    session, log = db
    with pytest.raises(PermissionDeniedError):
        service.revise_spec(session, log, GROWER, "epimedium.shreds", spec_in(11.0), now=NOW)


def test_revising_the_spec_of_an_unknown_form_is_not_found(db: tuple[Session, Log]) -> None:
    session, log = db
    with pytest.raises(NotFoundError) as caught:
        service.revise_spec(session, log, QUALITY, "ginseng.dried", spec_in(11.0), now=NOW)
    assert caught.value.field == "form_id"


def test_a_spec_listing_an_analyte_twice_is_refused(db: tuple[Session, Log]) -> None:
    session, log = db
    data = SpecIn(limits=[LimitIn(analyte="so2", unit="mg/kg", max=150.0)] * 2, reason="typo")
    with pytest.raises(InvalidInputError) as caught:
        service.revise_spec(session, log, QUALITY, "epimedium.shreds", data, now=NOW)
    assert caught.value.extra["rule"] == "spec.duplicate-analyte"


def test_revising_a_region_adds_a_version(db: tuple[Session, Log]) -> None:
    session, log = db
    old = service.get_region(session, "pingyu-daodi")
    ring = [[114.4, 32.8], [114.9, 32.8], [114.9, 33.2], [114.4, 33.2], [114.4, 32.8]]
    data = RegionIn(
        kind="daodi",
        admin_code="411723",
        name_zh="平舆县",
        name_en="Pingyu",
        geometry={"type": "Polygon", "coordinates": [ring]},
    )
    new = service.revise_region(session, log, QUALITY, "pingyu-daodi", data, now=NOW)
    assert new.version == old.version + 1
    assert service.get_region(session, "pingyu-daodi", old.version).geometry == old.geometry
    with pytest.raises(ConflictError):
        service.revise_region(session, log, QUALITY, "pingyu-daodi", data, now=NOW)


def test_a_region_with_invalid_geometry_is_refused_naming_the_field(db: tuple[Session, Log]) -> None:
    session, log = db
    bowtie = [[114.0, 32.8], [114.2, 32.9], [114.2, 32.8], [114.0, 32.9], [114.0, 32.8]]
    data = RegionIn(
        kind="gi",
        admin_code="411725",
        name_zh="确山县",
        name_en="Queshan",
        geometry={"type": "Polygon", "coordinates": [bowtie]},
    )
    with pytest.raises(InvalidInputError) as caught:
        service.revise_region(session, log, QUALITY, "queshan-gi", data, now=NOW)
    assert caught.value.field == "geometry.coordinates"
    assert caught.value.extra["rule"] == "geometry.self-intersection"


def test_season_and_yield_lookups_feed_the_rules(db: tuple[Session, Log]) -> None:
    session, _ = db
    seasons = service.seasons_of(session, "notoginseng")
    assert any(s.contains(12) for s in seasons) and any(s.contains(9) for s in seasons)
    drying = service.yield_range(session, "epimedium.fresh", "epimedium.dried")
    assert drying is not None and drying.min_ratio < drying.max_ratio <= 1.0
    assert service.yield_range(session, "epimedium.fresh", "notoginseng.dried") is None


def form_in(**changes: Any) -> FormIn:
    data: dict[str, Any] = {
        "id": "notoginseng.rhizome-slices",
        "herb_id": "notoginseng",
        "kind": "piece",
        "name_zh": "三七片",
        "name_en": "Rhizome slices",
        "gtin": "06901234000993",
        "gbt31774": "1603",
    }
    data.update(changes)
    return FormIn(**data)


def test_a_quality_officer_adds_a_decoction_piece_form_with_a_valid_gtin(db: tuple[Session, Log]) -> None:
    session, log = db
    form = service.add_form(session, log, QUALITY, form_in(), now=NOW)
    assert form.gtin == "06901234000993" and service.get_form(session, form.id).herb_id == "notoginseng"


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"herb_id": "ginseng", "id": "ginseng.slices"}, "herb_id", "catalog.unknown-herb"),
        ({"gtin": "06901234000999"}, "gtin", "gtin.check"),
        ({"gtin": "00012345000017"}, "gtin", "gtin.check"),
        ({"id": "prunella.slices"}, "id", "catalog.form-id"),
    ],
)
def test_a_form_with_an_unknown_herb_or_bad_gtin_is_refused(
    db: tuple[Session, Log], changes: dict[str, Any], field: str, rule: str
) -> None:
    session, log = db
    with pytest.raises(InvalidInputError) as caught:
        service.add_form(session, log, QUALITY, form_in(**changes), now=NOW)
    assert (caught.value.field, caught.value.extra["rule"]) == (field, rule)


def test_a_form_reusing_a_gtin_is_a_conflict(db: tuple[Session, Log]) -> None:
    session, log = db
    taken = service.get_form(session, "notoginseng.powder").gtin
    with pytest.raises(ConflictError) as caught:
        service.add_form(session, log, QUALITY, form_in(gtin=taken), now=NOW)
    assert caught.value.field == "gtin"


def test_seasons_and_yields_are_replaced_by_a_quality_officer(db: tuple[Session, Log]) -> None:
    session, log = db
    herb = service.replace_seasons(
        session, log, QUALITY, "prunella", [SeasonIn(name="summer", start_month=5, end_month=7)], now=NOW
    )
    assert [(s.start_month, s.end_month) for s in herb.seasons] == [(5, 7)]
    drying = YieldIn(
        step="drying", from_form="prunella.fresh", to_form="prunella.dried", min_ratio=0.3, max_ratio=0.45
    )
    herb = service.replace_yields(session, log, QUALITY, "prunella", [drying], now=NOW)
    assert service.yield_range(session, "prunella.fresh", "prunella.dried") == YieldRange(0.3, 0.45, "drying")
    assert service.yield_range(session, "prunella.dried", "prunella.prunella-piece") is None
    with pytest.raises(PermissionDeniedError):
        service.replace_seasons(session, log, GROWER, "prunella", [], now=NOW)


def test_a_yield_between_forms_of_another_herb_is_refused(db: tuple[Session, Log]) -> None:
    session, log = db
    step = YieldIn(
        step="drying", from_form="prunella.fresh", to_form="notoginseng.dried", min_ratio=0.2, max_ratio=0.3
    )
    with pytest.raises(InvalidInputError) as caught:
        service.replace_yields(session, log, QUALITY, "prunella", [step], now=NOW)
    assert (caught.value.field, caught.value.extra["rule"]) == ("yields[0].to_form", "catalog.unknown-form")
