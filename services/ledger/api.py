"""Public read API of the log: checkpoint, keys, C2SP tiles, entries, proofs, tlog-proof bundles."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from ledger.errors import InvalidProofError, MalformedError
from ledger.merkle import leaf_hash
from ledger.tiles import TILE_WIDTH, encode_bundle, parse_tile_path
from services.deps import Ctx
from services.errors import NotFoundError
from services.ledger import service
from services.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/ledger", tags=["ledger"], responses=PROBLEM_RESPONSES)
IMMUTABLE = "public, max-age=31536000, immutable"
Index = Annotated[int, Query(ge=0, le=2**62, description="0-based leaf index")]
Size = Annotated[int, Query(ge=0, le=2**62, description="tree size")]


class EntryOut(BaseModel):
    index: int
    entry: str
    """base64 of the exact entry bytes"""
    leaf_hash: str
    """lowercase hex, as `prev` and `lot_prev` refer to it"""


class InclusionOut(BaseModel):
    index: int
    size: int
    hashes: list[str]


class ConsistencyOut(BaseModel):
    old: int
    new: int
    hashes: list[str]


class CheckpointOut(BaseModel):
    size: int
    note: str


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get("/checkpoint", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def checkpoint(ctx: Ctx) -> Response:
    """Latest signed checkpoint (C2SP tlog-checkpoint in a signed note, cosignatures included)."""
    note, _ = service.latest_checkpoint(ctx.log, ctx.keys.log_verifier)
    return Response(note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/checkpoints", response_model=list[CheckpointOut])
def checkpoints(
    ctx: Ctx,
    after: Annotated[int, Query(ge=-1, le=2**62)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> list[CheckpointOut]:
    """Every signed checkpoint with size > `after`, oldest first, for auditors and monitors."""
    out: list[CheckpointOut] = []
    for size, note in ctx.log.store.checkpoints():
        if size > after:
            out.append(CheckpointOut(size=size, note=note.decode()))
            if len(out) == limit:
                break
    return out


@router.get("/vkey", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def vkey(ctx: Ctx) -> Response:
    """Verifier key(s) of the log, one per line."""
    return Response(ctx.keys.log.verifier_key() + "\n", media_type="text/plain; charset=utf-8")


@router.get(
    "/tile/{path:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def tile(ctx: Ctx, path: Annotated[str, Path(max_length=200)]) -> Response:
    """C2SP tlog-tiles: hash tiles `tile/{L}/{N}[.p/{W}]` and entry bundles `tile/entries/{N}[.p/{W}]`."""
    try:
        level, index, width = parse_tile_path("tile/" + path)
    except MalformedError as exc:
        raise InvalidProofError(f"bad tile path: {exc}") from exc
    size = ctx.log.size()
    count = width or TILE_WIDTH
    if level is None:
        start = index * TILE_WIDTH
        if start + count > size:
            raise NotFoundError(f"entry bundle {path} is beyond the log's {size} entries")
        body = encode_bundle(ctx.log.store.entries(start, start + count))
    else:
        if ((index * TILE_WIDTH + count) << (8 * level)) > size:
            raise NotFoundError(f"tile {path} is beyond the log's {size} entries")
        stored = ctx.log.read_tile(level, index)
        if len(stored) < count * 32:
            raise NotFoundError(f"tile {path} is not stored")
        body = stored[: count * 32]
    headers = {"Cache-Control": IMMUTABLE}
    return Response(body, media_type="application/octet-stream", headers=headers)


@router.get("/entries/{index}", response_model=EntryOut)
def entry(ctx: Ctx, index: Annotated[int, Path(ge=0, le=2**62)]) -> EntryOut:
    """One entry: its exact bytes (base64) and leaf hash (hex)."""
    try:
        data = ctx.log.entry(index)
    except InvalidProofError as exc:
        raise NotFoundError(str(exc)) from exc
    return EntryOut(index=index, entry=base64.b64encode(data).decode(), leaf_hash=leaf_hash(data).hex())


@router.get("/proof/inclusion", response_model=InclusionOut)
def inclusion(ctx: Ctx, index: Index, size: Size) -> InclusionOut:
    """RFC 9162 audit path of `index` in the tree of `size`, verified before it is served."""
    hashes = service.inclusion(ctx.log, ctx.keys.log_verifier, index, size)
    return InclusionOut(index=index, size=size, hashes=_b64(hashes))


@router.get("/proof/consistency", response_model=ConsistencyOut)
def consistency(ctx: Ctx, old: Size, new: Size) -> ConsistencyOut:
    """RFC 9162 consistency proof between two tree sizes, verified before it is served."""
    hashes = service.consistency(ctx.log, ctx.keys.log_verifier, old, new)
    return ConsistencyOut(old=old, new=new, hashes=_b64(hashes))


@router.get(
    "/proof/{index}.tlog-proof", response_class=Response, responses={200: {"content": {"text/plain": {}}}}
)
def tlog_proof(ctx: Ctx, index: Annotated[int, Path(ge=0, le=2**62)]) -> Response:
    """C2SP tlog-proof bundle: the entry (as extra), its audit path and the latest covering checkpoint."""
    proof = service.tlog_proof(ctx.log, ctx.keys.log_verifier, index)
    return Response(proof.encode(), media_type="text/plain; charset=utf-8")
