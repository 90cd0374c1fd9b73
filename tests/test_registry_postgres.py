"""Migrations and registry/catalog use cases on PostgreSQL (a fresh schema per test, dropped afterwards)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlmodel import Session

from ledger.entry import parse_entry
from ledger.log import Log
from services.app import create_app
from services.catalog import service as catalog
from services.catalog.models import LimitIn, SpecIn
from services.db import ledger_store, make_engine
from services.errors import InvalidInputError
from services.migrate import alembic_config, current, upgrade
from services.registry import service as registry
from services.registry.models import BaseIn, OrgIn, PlotIn, UserIn
from services.settings import Settings

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 6, 12, 8, 0, tzinfo=UTC)


def square(lon: float, lat: float, size: float = 0.002) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_migrations_and_use_cases_run_on_postgres(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=pg_url, key_dir=tmp_path / "keys", background=False)
    upgrade(settings, now=NOW)
    upgrade(settings, now=NOW)  # idempotent: a second start changes nothing
    assert current(settings) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    engine = make_engine(pg_url)
    log = Log(ledger_store(pg_url))
    try:
        with Session(engine) as session:
            _, _, key = registry.bootstrap_admin(
                session, uscc="91350100M000100Y43", org_name="Op", user_name="A", now=NOW
            )
            admin = registry.authenticate(session, key)
            coop = registry.register_org(
                session,
                log,
                admin,
                OrgIn(uscc="91440300708461136T", name="Coop", kind="cooperative"),
                now=NOW,
            )
            grower_key = registry.create_user(
                session, admin, UserIn(org_id=coop.id, name="Li", roles=["grower"]), now=NOW
            ).api_key
            grower = registry.authenticate(session, grower_key)
            base = registry.create_base(
                session,
                log,
                grower,
                BaseIn(code="WS-1", name="Wenshan", kind="production", admin_code="532601"),
                now=NOW,
            )
            plot = registry.register_plot(
                session,
                log,
                grower,
                PlotIn(
                    base_id=base.id,
                    code="WS-1-01",
                    name="p",
                    admin_code="532601",
                    geometry=square(104.2, 23.4),
                ),
                now=NOW,
            )
            spec = catalog.revise_spec(
                session,
                log,
                admin,
                "notoginseng.powder",
                SpecIn(limits=[LimitIn(analyte="so2", unit="mg/kg", max=150.0)], reason="pg test"),
                now=NOW,
            )
            session.commit()
        assert [m.code for m in plot.regions] == ["wenshan-gi"]
        assert spec.version == 2
        assert parse_entry(log.entry(plot.ledger_index)).kind == "registry.plot"  # type: ignore[arg-type]
        with Session(engine) as session:
            with pytest.raises(InvalidInputError):
                registry.register_plot(
                    session,
                    log,
                    grower,
                    PlotIn(
                        base_id=base.id,
                        code="bad",
                        name="p",
                        admin_code="532601",
                        geometry={"type": "Polygon", "coordinates": [[[104.2, 23.4]]]},
                    ),
                    now=NOW,
                )
            session.rollback()
            assert registry.list_plots(session, admin, base_id=None, limit=10, offset=0)[1] == 1
    finally:
        log.store.close()  # type: ignore[attr-defined]
        engine.dispose()


def test_the_app_starts_on_postgres_and_serves_the_catalog(pg_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=pg_url, key_dir=tmp_path / "keys", background=False))
    with TestClient(app) as client:
        assert client.get("/api/v1/catalog/herbs").json()["total"] == 3
        assert client.get("/api/v1/catalog/regions/wenshan-gi").json()["admin_code"] == "532600"
