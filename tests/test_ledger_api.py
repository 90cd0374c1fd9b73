"""The public read API of the log, checked the way an outside verifier would: trust only the key."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from ledger.audit import audit
from ledger.bundle import verify_tlog_proof
from ledger.entry import Draft
from ledger.merkle import leaf_hash, root_hash, verify_consistency, verify_inclusion
from ledger.note import NoteVerifier, open_note, parse_checkpoint
from ledger.tiles import decode_bundle, split_hashes
from services.app import create_app
from services.audit_cli import HTTPSource
from services.settings import Settings

SIZE = 600


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    ctx = app.state.ctx
    ctx.log.append(
        [
            Draft.of("test.event", "2026-06-12T08:00:00Z", "org-1", {"i": i}, lot=f"L{i % 5}")
            for i in range(SIZE)
        ]
    )
    ctx.checkpointer.sign()
    with TestClient(app) as test_client:
        yield test_client


def _verifier(client: TestClient) -> NoteVerifier:
    vkeys = client.get("/ledger/vkey").text.splitlines()
    assert client.get("/api/v1/keys").json()["log"] == vkeys
    return NoteVerifier.from_vkey(vkeys[0])


def _checkpoint(client: TestClient):  # type: ignore[no-untyped-def]
    response = client.get("/ledger/checkpoint")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return parse_checkpoint(open_note(response.text, [_verifier(client)]).text)


def test_checkpoint_is_a_signed_note_over_the_whole_log(client: TestClient) -> None:
    checkpoint = _checkpoint(client)
    assert checkpoint.size == SIZE and checkpoint.origin == "daodi.dev/log/v1"


def test_entries_and_inclusion_proofs_verify_against_the_signed_checkpoint(client: TestClient) -> None:
    checkpoint = _checkpoint(client)
    for index in (0, 1, 255, 256, 599):
        entry = client.get(f"/ledger/entries/{index}").json()
        data = base64.b64decode(entry["entry"])
        assert entry["leaf_hash"] == leaf_hash(data).hex()
        proof = client.get("/ledger/proof/inclusion", params={"index": index, "size": SIZE}).json()
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        verify_inclusion(index, SIZE, leaf_hash(data), hashes, checkpoint.root_hash)


def test_consistency_proofs_link_older_roots_to_the_signed_checkpoint(client: TestClient) -> None:
    checkpoint = _checkpoint(client)
    tile0 = split_hashes(client.get("/ledger/tile/0/000").content)
    tile1 = split_hashes(client.get("/ledger/tile/0/001").content)
    for old in (1, 100, 256, 512):
        body = client.get("/ledger/proof/consistency", params={"old": old, "new": SIZE}).json()
        proof = [base64.b64decode(h) for h in body["hashes"]]
        verify_consistency(old, SIZE, root_hash((tile0 + tile1)[:old]), checkpoint.root_hash, proof)


def test_tiles_and_entry_bundles_reproduce_the_root(client: TestClient) -> None:
    checkpoint = _checkpoint(client)
    hashes: list[bytes] = []
    entries: list[bytes] = []
    for n, width in ((0, None), (1, None), (2, 88)):
        suffix = f".p/{width}" if width else ""
        hashes += split_hashes(client.get(f"/ledger/tile/0/00{n}{suffix}").content)
        response = client.get(f"/ledger/tile/entries/00{n}{suffix}")
        assert response.headers["cache-control"].endswith("immutable")
        entries += decode_bundle(response.content)
    assert [leaf_hash(e) for e in entries] == hashes
    assert root_hash(hashes) == checkpoint.root_hash
    level1 = split_hashes(client.get("/ledger/tile/1/000.p/2").content)
    assert level1 == [root_hash(hashes[:256]), root_hash(hashes[256:512])]


def test_tlog_proof_bundle_verifies_offline(client: TestClient) -> None:
    text = client.get("/ledger/proof/42.tlog-proof").text
    _, checkpoint, entry = verify_tlog_proof(text, [_verifier(client)], origin="daodi.dev/log/v1")
    assert checkpoint.size == SIZE
    assert base64.b64decode(client.get("/ledger/entries/42").json()["entry"]) == entry


def test_remote_audit_reads_the_whole_log_through_the_public_api(client: TestClient) -> None:
    report = audit(HTTPSource("http://testserver", client=client), [_verifier(client)])
    assert report.size == SIZE and report.lots == 5


@pytest.mark.parametrize(
    "path",
    [
        "/ledger/proof/inclusion?index=-1&size=5",
        "/ledger/proof/inclusion?index=5&size=5",
        "/ledger/proof/inclusion?index=0&size=601",
        "/ledger/proof/inclusion?index=abc&size=5",
        "/ledger/proof/inclusion?index=1",
        "/ledger/proof/inclusion?index=99999999999999999999999&size=5",
        "/ledger/proof/consistency?old=0&new=5",
        "/ledger/proof/consistency?old=6&new=5",
        "/ledger/proof/consistency?old=1&new=9999",
        "/ledger/proof/consistency?old=x&new=5",
        "/ledger/tile/0/1",
        "/ledger/tile/0/x001",
        "/ledger/tile/0/000.p/0",
        "/ledger/tile/0/000.p/256",
        "/ledger/tile/99/000",
        "/ledger/tile/entries/000.p/abc",
        "/ledger/checkpoints?limit=0",
    ],
)
def test_malformed_or_out_of_range_requests_get_400_problems(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and problem["type"].startswith("https://daodi.dev/problems/")


@pytest.mark.parametrize(
    "path",
    ["/ledger/entries/600", "/ledger/tile/0/003", "/ledger/tile/entries/002", "/ledger/proof/600.tlog-proof"],
)
def test_what_does_not_exist_yet_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_checkpoint_before_any_signature_is_a_404_problem(settings: Settings) -> None:
    with TestClient(create_app(settings)) as fresh:
        assert fresh.get("/ledger/checkpoint").status_code == 404


def test_monitor_follows_the_log_through_the_public_api(client: TestClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ledger.monitor import Monitor

    monitor = Monitor(
        HTTPSource("http://testserver", client=client), [_verifier(client)], tmp_path / "m.json"
    )
    assert monitor.poll() == [] and monitor.state.size == SIZE
    # The log grows inside the same partial entry bundle: the monitor must read the longer bundle.
    client.app.state.ctx.log.append(  # type: ignore[attr-defined]
        [Draft.of("test.event", "2026-06-12T08:00:00Z", "o", {"i": i}) for i in range(SIZE, SIZE + 10)]
    )
    client.app.state.ctx.checkpointer.sign()  # type: ignore[attr-defined]
    assert monitor.poll() == [] and monitor.state.size == SIZE + 10


def test_the_app_refuses_to_start_on_storage_that_contradicts_its_checkpoint(settings: Settings) -> None:
    import sqlite3

    from ledger.errors import StorageError

    app = create_app(settings)
    app.state.ctx.log.append(
        [Draft.of("test.event", "2026-06-12T08:00:00Z", "o", {"i": i}) for i in range(40)]
    )
    app.state.ctx.checkpointer.sign()
    app.state.ctx.stop()
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as db:
        db.execute("UPDATE ledger_tiles SET data = substr(data, 1, 32*39) || zeroblob(32) WHERE level = 0")
    with pytest.raises(StorageError, match="index 39"):
        create_app(settings)
