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
