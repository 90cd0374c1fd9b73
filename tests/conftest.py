"""Shared fixtures: paths to ../shared/standards, per-test settings, and real-server URLs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from services.settings import Settings

if TYPE_CHECKING:
    from edge_support import MqttBroker

    from edge.broker import EmbeddedMosquitto

ROOT = Path(__file__).resolve().parents[1]
STANDARDS = ROOT.parent / "shared" / "standards"


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Argon2 with its smallest costs for the suite: the production parameters (64 MiB, 3 passes) cost about
    0.2 s per hash here, and the sign-in tests hash hundreds of times. What is tested (which passwords verify,
    how often a sign-in checks one) does not depend on the cost."""
    from argon2 import PasswordHasher

    from services.accounts import service as accounts

    production = accounts._hasher, accounts._DUMMY_HASH
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    accounts._DUMMY_HASH = accounts._hasher.hash("not a password of anyone")
    yield
    accounts._hasher, accounts._DUMMY_HASH = production


@pytest.fixture(autouse=True, scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Give each fresh SQLite database a copy of one migrated to head (reference data loaded) instead of
    running every migration again: the same file `upgrade` would leave, made once per session. Existing
    files, PostgreSQL, other revisions and injected clocks go through the real `upgrade`."""
    import shutil
    import sys

    from services import migrate

    real = migrate.upgrade
    template = tmp_path_factory.mktemp("template") / "daodi.db"

    def upgrade(settings: Settings, revision: str = "head", *, now: object = None) -> None:
        url = settings.database_url
        path = Path(url.removeprefix("sqlite:///"))
        if revision != "head" or now is not None or not url.startswith("sqlite:///") or path.exists():
            real(settings, revision, now=now)  # type: ignore[arg-type]
            return
        if not template.exists():
            real(settings.model_copy(update={"database_url": f"sqlite:///{template}"}))
        shutil.copyfile(template, path)

    migrate.upgrade = upgrade  # type: ignore[assignment]
    worlds = [m for m in (sys.modules.get("lots_world"),) if m is not None and m.upgrade is real]
    for module in worlds:
        module.upgrade = upgrade
    yield
    migrate.upgrade = real  # type: ignore[assignment]
    for module in worlds:
        module.upgrade = real


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


# -- MQTT ------------------------------------------------------------------------------------------------


def _temporary_mosquitto(root: Path) -> EmbeddedMosquitto:
    from edge.broker import EmbeddedMosquitto, mosquitto_binary

    if mosquitto_binary() is None:
        pytest.skip("no MQTT broker: DAODI_TEST_MQTT_URL is unset and mosquitto is not installed")
    return EmbeddedMosquitto(root).start()


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttBroker]:
    """DAODI_TEST_MQTT_URL (a shared broker: use unique ids) or a temporary mosquitto for the session."""
    url = os.environ.get("DAODI_TEST_MQTT_URL")
    if url:
        from edge_support import MqttBroker

        yield MqttBroker(url, None)
        return
    from edge_support import MqttBroker

    broker = _temporary_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield MqttBroker(None, broker)
    finally:
        broker.stop()


@pytest.fixture
def own_mosquitto(tmp_path: Path) -> Iterator[MqttBroker]:
    """A temporary mosquitto of this test alone (for restarting it); skipped without the binary."""
    from edge_support import MqttBroker

    broker = _temporary_mosquitto(tmp_path / "mosquitto")
    try:
        yield MqttBroker(None, broker)
    finally:
        broker.stop()


@pytest.fixture
def mqtt_ids() -> str:
    """A unique suffix for org ids, client ids and the shared-subscription group of one test."""
    return uuid.uuid4().hex[:10]
