"""The log on PostgreSQL: several independent appenders serialised by the advisory lock."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from ledger.audit import audit
from ledger.entry import Draft
from ledger.log import Appended, Log
from ledger.sequencer import Sequencer
from services.app import create_app
from services.db import ledger_store
from services.settings import Settings

pytestmark = pytest.mark.postgres


def test_independent_appenders_on_postgres_build_one_consistent_log(pg_url: str) -> None:
    acked: list[Appended] = []
    lock = threading.Lock()

    def process(p: int) -> None:
        # Each "process" has its own store, connections, cached right edge and sequencer.
        with Sequencer(Log(ledger_store(pg_url)), max_delay=0.002) as sequencer:
            for i in range(60):
                result = sequencer.append(
                    Draft.of("test.event", "2026-06-12T08:00:00Z", f"p{p}", {"i": i}, lot=f"L{i % 4}")
                )
                with lock:
                    acked.append(result)

    threads = [threading.Thread(target=process, args=(p,)) for p in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.index for a in acked) == list(range(180))
    store = ledger_store(pg_url)
    assert all(store.entries(a.index, a.index + 1)[0] == a.entry for a in acked)
    report = audit(store, [])
    assert report.size == 180 and report.lots == 4


def test_read_api_serves_proofs_from_postgres(pg_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=pg_url, key_dir=tmp_path / "keys", background=False)
    app = create_app(settings)
    app.state.ctx.log.append(
        [Draft.of("test.event", "2026-06-12T08:00:00Z", "o", {"i": i}) for i in range(300)]
    )
    app.state.ctx.checkpointer.sign()
    with TestClient(app) as client:
        assert client.get("/ledger/checkpoint").text.splitlines()[1] == "300"
        assert client.get("/ledger/proof/inclusion", params={"index": 299, "size": 300}).status_code == 200
        assert client.get("/ledger/proof/17.tlog-proof").status_code == 200
        assert client.get("/ledger/tile/0/000").status_code == 200
