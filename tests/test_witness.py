"""C2SP tlog-witness: the witness cosigns only consistent checkpoints; the log collects cosignatures."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.checkpointer import Checkpointer
from ledger.entry import Draft
from ledger.log import Log
from ledger.note import CosignatureSigner, Ed25519Signer, NoteVerifier, open_note, parse_checkpoint
from ledger.storage import MemoryStore
from ledger.witness import encode_submission
from services.witness.app import build_witness, create_witness_app
from services.witness.client import WitnessClient

ORIGIN = "example.test/log"


def grow(log: Log, n: int) -> None:
    start = log.size()
    log.append(
        [Draft.of("test.event", "2026-06-12T08:00:00Z", "o", {"i": i}) for i in range(start, start + n)]
    )


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


@pytest.fixture
def witness_http(tmp_path: Path, signer: Ed25519Signer) -> TestClient:
    witness = build_witness("witness.test/w1", tmp_path / "witness", [signer.verifier_key()])
    return TestClient(create_witness_app(witness))


def signed(log: Log, signer: Ed25519Signer) -> str:
    root = base64.b64encode(log.root(log.size())).decode()
    return signer.sign_note(f"{ORIGIN}\n{log.size()}\n{root}\n")


def post(http: TestClient, old: int, proof: list[bytes], note: str):  # type: ignore[no-untyped-def]
    return http.post("/add-checkpoint", content=encode_submission(old, proof, note))


def test_witness_cosigns_a_consistent_history_and_remembers_it(
    tmp_path: Path, signer: Ed25519Signer, witness_http: TestClient
) -> None:
    log = Log(MemoryStore())
    grow(log, 10)
    first = signed(log, signer)
    response = post(witness_http, 0, [], first)
    assert response.status_code == 200 and response.text.startswith("— witness.test/w1 ")
    wvkey = witness_http.get("/vkey").text.strip()
    assert open_note(first + response.text, [NoteVerifier.from_vkey(wvkey)]).signatures
    grow(log, 7)
    second = signed(log, signer)
    assert post(witness_http, 10, log.consistency_proof(10, 17), second).status_code == 200
    # A restarted witness keeps its state: the stale old size is now a conflict naming 17.
    restarted = TestClient(
        create_witness_app(build_witness("witness.test/w1", tmp_path / "witness", [signer.verifier_key()]))
    )
    stale = post(restarted, 10, log.consistency_proof(10, 17), second)
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "text/x.tlog.size" and stale.text == "17\n"


def test_witness_refuses_a_forked_log(signer: Ed25519Signer, witness_http: TestClient) -> None:
    honest, fork = Log(MemoryStore()), Log(MemoryStore())
    grow(honest, 10)
    assert post(witness_http, 0, [], signed(honest, signer)).status_code == 200
    fork.append([Draft.of("test.event", "2026-06-12T08:00:00Z", "evil", {"i": i}) for i in range(12)])
    forked = post(witness_http, 10, fork.consistency_proof(10, 12), signed(fork, signer))
    assert forked.status_code == 422
    same_size = Log(MemoryStore())
    same_size.append([Draft.of("test.event", "2026-06-12T08:00:00Z", "evil", {"i": i}) for i in range(10)])
    assert post(witness_http, 10, [], signed(same_size, signer)).status_code == 409


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"old x\n\n", 400),
        (b"no blank line", 400),
        (b"old 01\n\nexample.test/log\n1\n", 400),
        (b"old 0\nnot-base64!\n\n" + b"x", 400),
    ],
)
def test_malformed_submissions_are_400(witness_http: TestClient, body: bytes, status: int) -> None:
    assert witness_http.post("/add-checkpoint", content=body).status_code == status


def test_unknown_origin_is_404_and_untrusted_signature_is_403(witness_http: TestClient) -> None:
    log = Log(MemoryStore())
    grow(log, 3)
    stranger = Ed25519Signer.generate("other.test/log")
    note = stranger.sign_note(f"other.test/log\n3\n{base64.b64encode(log.root(3)).decode()}\n")
    assert post(witness_http, 0, [], note).status_code == 404
    impostor = Ed25519Signer.generate(ORIGIN)
    assert post(witness_http, 0, [], signed(log, impostor)).status_code == 403
    assert post(witness_http, 5, [], signed(log, Ed25519Signer.generate(ORIGIN))).status_code == 403


def test_old_size_beyond_the_checkpoint_is_400(signer: Ed25519Signer, witness_http: TestClient) -> None:
    log = Log(MemoryStore())
    grow(log, 3)
    assert post(witness_http, 9, [], signed(log, signer)).status_code == 400


def test_checkpointer_collects_witness_cosignatures(signer: Ed25519Signer, witness_http: TestClient) -> None:
    wverifier = NoteVerifier.from_vkey(witness_http.get("/vkey").text.strip())
    log = Log(MemoryStore())
    client = WitnessClient(log, [("http://testserver", wverifier)], _http=witness_http)
    checkpointer = Checkpointer(log, signer, ORIGIN, cosigner=client)
    for n in (5, 300, 1):
        grow(log, n)
        note = checkpointer.sign()
        assert note is not None
        opened = open_note(note, [signer.verifier(), wverifier])
        assert {s.name for s in opened.signatures} == {ORIGIN, "witness.test/w1"}
        assert parse_checkpoint(opened.text).size == log.size()


def test_an_unreachable_witness_does_not_stop_checkpoints(signer: Ed25519Signer) -> None:
    log = Log(MemoryStore())
    grow(log, 4)
    absent = CosignatureSigner.generate("witness.test/absent").verifier()
    checkpointer = Checkpointer(
        log, signer, ORIGIN, cosigner=WitnessClient(log, [("http://127.0.0.1:9", absent)])
    )
    note = checkpointer.sign()
    assert note is not None and len(open_note(note, [signer.verifier(), absent]).signatures) == 1
