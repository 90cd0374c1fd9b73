"""Shared fixtures: paths to ../shared/standards, per-test settings, and real-server URLs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
STANDARDS = ROOT.parent / "shared" / "standards"


@pytest.fixture
def standards() -> Path:
    """The shared public standards folder (schemas, vectors, example log)."""
    if not STANDARDS.is_dir():
        pytest.fail(f"{STANDARDS} is missing: the shared/ folder must sit beside the project")
    return STANDARDS


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for an isolated platform on a fresh SQLite file, background workers off."""
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'daodi.db'}",
        key_dir=tmp_path / "keys",
        public_base_url="http://testserver",
        background=False,
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = os.environ.get("DAODI_TEST_DATABASE_URL")
    if not base:
        pytest.skip("DAODI_TEST_DATABASE_URL is not set: no PostgreSQL server to test against")
    import psycopg
    from sqlalchemy.engine import make_url

    schema = "t_" + uuid.uuid4().hex[:12]
    conninfo = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
