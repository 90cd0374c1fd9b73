"""`daodi witness serve`: a regulator's witness with its own key and state (C2SP tlog-witness)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from fastapi import FastAPI, Request, Response

from ledger.note import CosignatureSigner, NoteVerifier
from ledger.witness import Witness, WitnessError, WitnessState


def load_cosigner(key_dir: Path, name: str) -> CosignatureSigner:
    """The witness key under key_dir, created on first start (0600)."""
    path = key_dir / "witness.ed25519"
    if path.exists():
        return CosignatureSigner.from_private_bytes(name, base64.b64decode(path.read_text().strip()))
    key_dir.mkdir(parents=True, exist_ok=True)
    signer = CosignatureSigner.generate(name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(signer.private_bytes()).decode() + "\n")
    return signer


def create_witness_app(witness: Witness) -> FastAPI:
    """HTTP face of a witness: POST /add-checkpoint, GET /vkey."""
    app = FastAPI(title="Daodi Trace witness", version="0.1.0")
    app.state.witness = witness

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        try:
            lines = witness.add_checkpoint(body)
        except WitnessError as exc:
            if exc.size is not None:
                # The spec's media type has no charset parameter; set the header exactly.
                size_type = {"content-type": "text/x.tlog.size"}
                return Response(f"{exc.size}\n", status_code=409, headers=size_type)
            return Response(str(exc) + "\n", status_code=exc.status, media_type="text/plain")
        return Response(lines, media_type="text/plain; charset=utf-8")

    @app.get("/vkey")
    def vkey() -> Response:
        return Response(witness.signer.verifier_key() + "\n", media_type="text/plain; charset=utf-8")

    return app


def build_witness(name: str, state_dir: Path, log_vkeys: list[str]) -> Witness:
    """A witness named `name` with its key and state under state_dir, following the given logs."""
    logs: dict[str, list[NoteVerifier]] = {}
    for text in log_vkeys:
        verifier = NoteVerifier.from_vkey(text)
        # By C2SP convention a log's key name is its origin.
        logs.setdefault(verifier.name, []).append(verifier)
    return Witness(load_cosigner(state_dir, name), logs, WitnessState(state_dir / "witness.db"))
