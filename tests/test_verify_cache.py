"""The public verdict is cached per label and ledger version, and never stale: a new event, a hold or
recall, a voided label and a new checkpoint each show on the very next scan. Scans are written by a
background writer in batches (bounded, flushed on shutdown) and the regulator's clone analytics see them."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lots_world import NOW, World
from sqlalchemy import func
from sqlmodel import Session, select
from test_verify_api import GOOD, QC_OK, _path, _qc, _unit_label, build_lots, lot_uri, piece_gtin

from services.app import create_app
from services.keys import KeyRing
from services.labels.service import void_label
from services.lots import service as lots
from services.lots.models import LotActionIn
from services.settings import Settings
from services.verify import service
from services.verify.models import ScanRecord

JSON = {"Accept": "application/json"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "sqlite":
        return settings
    url: str = request.getfixturevalue("pg_url")
    return settings.model_copy(update={"database_url": url})


@pytest.fixture
def world(any_settings: Settings) -> World:
    w = World(any_settings)
    build_lots(w)
    return w


@pytest.fixture
def client(any_settings: Settings, world: World) -> Iterator[TestClient]:
    app = create_app(any_settings)
    app.state.ctx.checkpointer.sign()
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records each time a verdict is assembled from the database (a cache miss)."""
    calls: list[str] = []
    original = service._static_verdict

    def counted(*args: Any, **kwargs: Any) -> dict[str, Any]:
        out = original(*args, **kwargs)
        calls.append(out["lot"])
        return out

    monkeypatch.setattr(service, "_static_verdict", counted)
    return calls


def _scan(client: TestClient, path: str) -> dict[str, Any]:
    response = client.get(path, headers=JSON)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _timeline(verdict: dict[str, Any]) -> list[str]:
    return [step["type"] for step in verdict["timeline"]]


def test_a_repeated_scan_is_served_from_the_cache_with_the_same_verdict(
    client: TestClient, any_settings: Settings, world: World, builds: list[str]
) -> None:
    path = _path(lot_uri(any_settings, piece_gtin(world), GOOD))
    first = _scan(client, path)  # assembled, in a worker thread
    second = _scan(client, path)  # from the cache, on the event loop
    assert builds == [GOOD]
    assert second["scans"]["count"] == first["scans"]["count"] + 1
    assert {k: v for k, v in second.items() if k != "scans"} == {
        k: v for k, v in first.items() if k != "scans"
    }
    assert second["status"] == "pass" and second["checks"][0]["name"] == "signature"


def test_a_new_event_shows_on_the_next_scan(
    client: TestClient, any_settings: Settings, world: World, builds: list[str]
) -> None:
    path = _path(lot_uri(any_settings, piece_gtin(world), GOOD))
    before = _scan(client, path)
    _qc(world, GOOD, {**QC_OK, "moisture": 16.0})  # written by another process's connection
    after = _scan(client, path)
    assert len(builds) == 2
    assert _timeline(after) == [*_timeline(before), "qc"]
    assert after["status"] == "fail"  # the new QC failed: the cached pass must not be served


def test_a_hold_and_a_recall_show_on_the_next_scan(
    client: TestClient, any_settings: Settings, world: World
) -> None:
    path = _path(lot_uri(any_settings, piece_gtin(world), GOOD))
    assert "hold" not in _timeline(_scan(client, path))
    when = "2026-07-02T09:00:00+08:00"
    world.run(
        lots.hold, world.admin, LotActionIn.model_validate({"lot": GOOD, "event_time": when, "reason": "x"})
    )
    assert _timeline(_scan(client, path))[-1] == "hold"
    recall = LotActionIn.model_validate(
        {"lot": GOOD, "event_time": "2026-07-03T09:00:00+08:00", "reason": "y"}
    )
    world.run(lots.recall, world.admin, recall)
    assert _timeline(_scan(client, path))[-1] == "recall"


def test_a_voided_label_is_gone_on_the_next_scan(
    client: TestClient, any_settings: Settings, world: World
) -> None:
    uri = _unit_label(any_settings, world, "activated", GOOD)
    assert _scan(client, _path(uri))["level"] == "unit"
    with Session(world.engine) as s:
        void_label(s, world.log, world.admin, piece_gtin(world), "7KQ2M9XW4T", "lost", now=NOW)
        s.commit()
    world.log.committed()
    gone = client.get(_path(uri), headers=JSON)
    assert gone.status_code == 410, gone.text


def test_a_new_checkpoint_shows_on_the_next_scan(
    client: TestClient, any_settings: Settings, world: World
) -> None:
    path = _path(lot_uri(any_settings, piece_gtin(world), GOOD))
    _qc(world, GOOD, QC_OK)
    waiting = _scan(client, path)["ledger"]
    assert waiting["pending"] == 1
    client.app.state.ctx.checkpointer.sign()  # type: ignore[attr-defined]
    proven = _scan(client, path)["ledger"]
    assert proven["pending"] == 0 and proven["verified"] == waiting["verified"] + 1
    assert proven["checkpoint_size"] > waiting["checkpoint_size"]


def test_scans_are_written_at_shutdown_and_clone_analytics_see_them(
    any_settings: Settings, world: World
) -> None:
    path = _path(lot_uri(any_settings, piece_gtin(world), GOOD))
    app = create_app(any_settings)
    app.state.ctx.checkpointer.sign()
    scans = 4
    with TestClient(app) as client:
        _scan(client, path)
        state = client.app.state.verify  # type: ignore[attr-defined]
        service.flush_scans(state, app.state.ctx.engine)
        state.thresholds = dataclasses.replace(state.thresholds, flush_seconds=3600, flush_batch=10_000)
        for _ in range(scans):
            _scan(client, path)
        assert _stored(world) == 1  # buffered, not written yet
        assert _scan(client, path)["scans"]["count"] == scans + 2  # but counted already
    assert _stored(world) == scans + 2  # written on shutdown
    thresholds = dataclasses.replace(state.thresholds, max_scans_per_lot=scans)
    with Session(world.engine) as s:
        found = service.clone_suspicions(s, since=NOW - timedelta(days=3650), thresholds=thresholds)
    assert [(f["lot"], f["rule"], f["scans"]) for f in found] == [(GOOD, "scan.too-many", scans + 2)]


def _stored(world: World) -> int:
    with Session(world.engine) as s:
        return int(s.execute(select(func.count()).select_from(ScanRecord)).scalar_one())


def _until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_the_background_writer_stores_scans_in_batches(any_settings: Settings, world: World) -> None:
    keys = KeyRing.load(any_settings.key_dir, any_settings.log_origin)
    state = service.new_state(any_settings.key_dir, any_settings.database_url, keys.log_verifier, [])
    state.thresholds = dataclasses.replace(state.thresholds, flush_seconds=0.05)
    service.start_writer(state, world.engine)
    try:
        with Session(world.engine) as s:
            target = service.resolve(s, piece_gtin(world), GOOD, None)
        for i in range(30):
            service.record_scan(
                state, world.engine, target, address=f"203.0.113.{i}", region=None, user_agent=None, now=NOW
            )
        _until(lambda: _stored(world) == 30)
        assert not state.pending
    finally:
        service.stop_writer(state, world.engine)
    assert state.writer is None


def test_a_full_buffer_is_written_by_the_scanning_request(
    any_settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SCAN_QUEUE_MAX", 5)
    keys = KeyRing.load(any_settings.key_dir, any_settings.log_origin)
    state = service.new_state(any_settings.key_dir, any_settings.database_url, keys.log_verifier, [])
    state.thresholds = dataclasses.replace(state.thresholds, flush_seconds=3600, flush_batch=10_000)
    service.start_writer(state, world.engine)  # asleep for an hour
    try:
        with Session(world.engine) as s:
            target = service.resolve(s, piece_gtin(world), GOOD, None)
        for _ in range(4):
            service.record_scan(
                state, world.engine, target, address=None, region=None, user_agent=None, now=NOW
            )
        assert _stored(world) == 0 and len(state.pending) == 4
        service.record_scan(state, world.engine, target, address=None, region=None, user_agent=None, now=NOW)
        assert _stored(world) == 5 and not state.pending
    finally:
        service.stop_writer(state, world.engine)
