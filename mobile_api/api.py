"""The grower-facing mobile API, mounted at /mobile/v1: sign-in, field reference data, label scans, harvest by
scanning, offline sync and resumable photo uploads. Each handler parses input, calls one service function and
shapes the output; errors are RFC 9457 problems from services.problems.

Authentication: `POST /auth/sign-in` returns a short-lived access token (JWT) and a refresh token; send the
access token as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from mobile_api.schemas import CredentialsIn, MeOut, RefreshIn, ScanIn, SignInIn, TokensOut
from services.accounts import service as accounts
from services.deps import Ctx, CurrentUser, SessionDep
from services.errors import AuthenticationError, InvalidInputError, PayloadTooLargeError
from services.labels import activation
from services.labels.activation import (
    HarvestRecord,
    HarvestResult,
    PhotoStatus,
    ScanOut,
    SyncIn,
    SyncOut,
)
from services.problems import PAYLOAD_TOO_LARGE_RESPONSE, PROBLEM_RESPONSES, RATE_LIMITED_RESPONSE
from services.registry.models import Principal

router = APIRouter(prefix="/mobile/v1", tags=["mobile"], responses=PROBLEM_RESPONSES)
_bearer = HTTPBearer(
    auto_error=False, scheme_name="MobileAccessToken", description="access token from /mobile/v1/auth/sign-in"
)
Sha256 = Annotated[
    str, Path(pattern=activation.SHA256_HEX, description="SHA-256 of the photo, lowercase hex")
]
_RANGE = re.compile(r"^bytes (\d{1,10})-(\d{1,10})/(\d{1,10})$")


def get_clock() -> datetime:
    """The current time; tests override this dependency to move the clock."""
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(get_clock)]


def get_token_key(request: Request, ctx: Ctx) -> bytes:
    """The JWT signing key, read (or created) under DAODI_KEY_DIR once per app."""
    key: bytes | None = getattr(request.app.state, "mobile_token_key", None)
    if key is None:
        key = accounts.load_signing_key(ctx.settings.key_dir)
        request.app.state.mobile_token_key = key
    return key


TokenKey = Annotated[bytes, Depends(get_token_key)]


def get_mobile_user(
    ctx: Ctx,
    key: TokenKey,
    now: Now,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The principal of the access token; a 401 problem when it is missing, expired or revoked."""
    with Session(ctx.read_engine) as session:
        return accounts.authenticate_access(session, key, bearer.credentials if bearer else None, now=now)


MobileUser = Annotated[Principal, Depends(get_mobile_user)]


def get_sign_in_limits(ctx: Ctx) -> accounts.SignInLimits:
    """The failed sign-in limits of DAODI_SIGN_IN_* settings."""
    settings = ctx.settings
    return accounts.SignInLimits(
        account_failures=settings.sign_in_account_failures,
        network_failures=settings.sign_in_network_failures,
        window=timedelta(seconds=settings.sign_in_window),
        network_prefix_v4=settings.sign_in_network_prefix_v4,
        network_prefix_v6=settings.sign_in_network_prefix_v6,
    )


SignInLimitsDep = Annotated[accounts.SignInLimits, Depends(get_sign_in_limits)]


def _tokens(tokens: accounts.Tokens) -> TokensOut:
    p = tokens.principal
    return TokensOut(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        refresh_expires_in=tokens.refresh_expires_in,
        user_id=p.user_id,
        org_id=p.org_id,
        roles=sorted(p.roles),
    )


def _own_session(ctx: Ctx) -> Iterator[Session]:
    with Session(ctx.engine) as session:
        yield session


OwnSession = Annotated[Session, Depends(_own_session)]


# -- accounts ---------------------------------------------------------------------------------------------


@router.post("/auth/sign-in", response_model=TokensOut, responses={429: RATE_LIMITED_RESPONSE})
def sign_in(
    data: SignInIn,
    request: Request,
    session: OwnSession,
    key: TokenKey,
    now: Now,
    limits: SignInLimitsDep,
) -> TokensOut:
    """Sign in with a username or phone number and password; returns an access and a refresh token.

    A wrong login or password is 401 `account.sign-in`. After too many failed sign-ins for one login (5 in 15
    minutes by default) or from one network (100 per /24 or IPv6 /64), sign-in answers 429 with `Retry-After`
    seconds (`account.too-many-failures`, `account.network-too-many-failures`) until the window that began
    with the first failure ends; a successful sign-in clears the login's count.
    """
    try:
        tokens = accounts.sign_in(
            session,
            key,
            login=data.login,
            password=data.password,
            install_id=data.install_id,
            now=now,
            client=request.client.host if request.client is not None else None,
            limits=limits,
        )
    except AuthenticationError:
        session.commit()  # keep the failed attempt the use case counted
        raise
    session.commit()
    return _tokens(tokens)


@router.post("/auth/refresh", response_model=TokensOut)
def refresh(data: RefreshIn, session: OwnSession, key: TokenKey, now: Now) -> TokensOut:
    """Exchange a refresh token for new tokens (the old refresh token stops working).

    Presenting a refresh token that was already used revokes that sign-in on the install (401 `token.reuse`).
    """
    try:
        tokens = accounts.refresh(session, key, data.refresh_token, now=now)
    except accounts.TokenReuseError:
        session.commit()  # keep the revocation the use case wrote
        raise
    session.commit()
    return _tokens(tokens)


@router.post("/auth/sign-out", status_code=204)
def sign_out(data: RefreshIn, session: SessionDep, now: Now) -> Response:
    """Revoke the sign-in a refresh token belongs to (its access tokens stop working at once)."""
    accounts.revoke(session, data.refresh_token, now=now)
    return Response(status_code=204)


@router.post("/auth/sign-out-everywhere", status_code=204)
def sign_out_everywhere(session: SessionDep, user: MobileUser, now: Now) -> Response:
    """Revoke every sign-in of the caller, on every install."""
    accounts.revoke_all(session, user, now=now)
    return Response(status_code=204)


@router.put("/users/{user_id}/credentials", status_code=204)
def set_credentials(
    user_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    data: CredentialsIn,
    session: SessionDep,
    user: CurrentUser,
    now: Now,
) -> Response:
    """Set a user's username, phone number and password (an admin, or the user, with an API key)."""
    accounts.set_credentials(
        session, user, user_id, password=data.password, username=data.username, phone=data.phone, now=now
    )
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
def me(user: MobileUser) -> MeOut:
    """Who the access token speaks for (roles and organisation as the registry has them now)."""
    return MeOut(user_id=user.user_id, org_id=user.org_id, roles=sorted(user.roles))


# -- reference data ---------------------------------------------------------------------------------------


@router.get(
    "/reference",
    responses={
        200: {"description": "bases, plots (GeoJSON), plantings with readiness, pesticide products"},
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
    },
)
def reference(
    ctx: Ctx,
    user: MobileUser,
    now: Now,
    if_none_match: Annotated[str | None, Header()] = None,
    accept_encoding: Annotated[str | None, Header()] = None,
) -> Response:
    """Everything the phone needs in the field, in one small JSON document (gzip when accepted).

    Send the `ETag` back as `If-None-Match`: an unchanged document answers 304 with no body.
    """
    with Session(ctx.read_engine) as session:
        doc = activation.reference_data(session, user, today=now.date())
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding, Authorization"}
    sent = {t.strip().removeprefix("W/") for t in (if_none_match or "").split(",")}
    if etag in sent or "*" in sent:
        return Response(status_code=304, headers=headers)
    if "gzip" in (accept_encoding or "").lower():
        headers["Content-Encoding"] = "gzip"
        body = gzip.compress(body, mtime=0)
    return Response(body, media_type="application/json", headers=headers)


# -- scan and harvest -------------------------------------------------------------------------------------


@router.post("/scan", response_model=ScanOut)
def scan(data: ScanIn, ctx: Ctx, user: MobileUser) -> ScanOut:
    """What a scanned label is: signature, status (issued, activated, voided), owner and lot."""
    with Session(ctx.read_engine) as session:
        return activation.scan_label(session, user, data.uri, ctx.keys.label_public_keys())


@router.post(
    "/harvests",
    response_model=HarvestResult,
    status_code=201,
    responses={200: {"model": HarvestResult, "description": "the stored result of this record id"}},
)
def harvest(
    data: HarvestRecord, response: Response, session: SessionDep, ctx: Ctx, user: MobileUser, now: Now
) -> HarvestResult:
    """Harvest by scanning: the labels become one new fresh-herb lot; the answer lists every check.

    Idempotent by `id`: the same record again answers 200 with the stored result; the same id with other
    content answers 409 with the stored version in `stored`. A refused harvest (e.g. inside a PHI) is a 422
    problem naming the rule, with the checks in `checks`.
    """
    outcome = activation.record_harvest(
        session, ctx.log, user, data, label_keys=ctx.keys.label_public_keys(), now=now
    )
    if not outcome.created:
        response.status_code = 200
    return outcome.result


@router.post("/sync", response_model=SyncOut)
def sync(data: SyncIn, session: SessionDep, ctx: Ctx, user: MobileUser, now: Now) -> SyncOut:
    """Send queued records (up to 1000); they are processed in `recorded_at` order, each on its own.

    Each result has the HTTP status the record would have had alone: 201 created, 200 already received
    (same content), 409 id reused with other content (`stored` holds the stored version), 4xx refused
    (`problem`). Refused records are not stored: fix and resend them under the same id.
    """
    return activation.sync_records(
        session, ctx.log, user, data, label_keys=ctx.keys.label_public_keys(), now=now
    )


# -- photos -----------------------------------------------------------------------------------------------


async def _read_body(request: Request, *, whole: bool) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed a chunk; `whole`: it is the photo."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if whole and int(declared) > activation.MAX_PHOTO_BYTES:
            raise PayloadTooLargeError(
                f"a photo is at most {activation.MAX_PHOTO_BYTES} bytes; this one is {int(declared)}",
                field="Content-Length",
                rule="photo.too-large",
                limit=activation.MAX_PHOTO_BYTES,
            )
        if int(declared) > activation.MAX_CHUNK_BYTES:
            raise PayloadTooLargeError(
                f"a request carries at most {activation.MAX_CHUNK_BYTES} bytes: send larger photos in chunks",
                field="Content-Length",
                rule="photo.chunk-size",
                limit=activation.MAX_CHUNK_BYTES,
            )
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > activation.MAX_CHUNK_BYTES:
            raise PayloadTooLargeError(
                f"a request carries at most {activation.MAX_CHUNK_BYTES} bytes: send larger photos in chunks",
                field="body",
                rule="photo.chunk-size",
                limit=activation.MAX_CHUNK_BYTES,
            )
    return bytes(body)


def _store_chunk(
    ctx: Ctx, user: Principal, sha256: str, start: int, total: int, chunk: bytes, now: datetime
) -> PhotoStatus:
    with Session(ctx.engine) as session:
        try:
            status = activation.put_photo_chunk(
                session, user, sha256, start=start, total=total, chunk=chunk, now=now
            )
        except activation.PhotoRejectedError:
            session.commit()  # the rejected bytes are discarded: resend from byte 0
            raise
        session.commit()
        return status


@router.put(
    "/photos/{sha256}",
    response_model=PhotoStatus,
    responses={
        202: {"model": PhotoStatus, "description": "chunk stored; send the next from `received`"},
        413: PAYLOAD_TOO_LARGE_RESPONSE,
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def put_photo(
    sha256: Sha256,
    request: Request,
    response: Response,
    ctx: Ctx,
    user: MobileUser,
    now: Now,
    content_range: Annotated[
        str | None, Header(description="`bytes <first>-<last>/<total>`; omit to send the whole photo at once")
    ] = None,
) -> PhotoStatus:
    """Upload a photo, named by its SHA-256, whole or in chunks of at most 1 MiB (resumable).

    Send chunks in order; after a broken connection ask `GET /photos/{sha256}/status` and resume at
    `received`. When the last byte arrives the server hashes the photo: a mismatch or a non-image is refused
    (422 `photo.hash-mismatch`, `photo.not-an-image`) and discarded.

    Photos are at most 8 MiB: a larger declared total (`Content-Range`, or `Content-Length` of a whole photo)
    is refused with 413 `photo.too-large` before any byte is read or stored; a request body above 1 MiB with
    413 `photo.chunk-size`. The problem names the `field` and gives the `limit` in bytes.
    """
    match = None if content_range is None else _RANGE.match(content_range.strip())
    if content_range is not None and match is None:
        raise InvalidInputError(
            "Content-Range must be `bytes first-last/total` matching the body",
            field="Content-Range",
            rule="photo.content-range",
        )
    if match is not None and int(match[3]) > activation.MAX_PHOTO_BYTES:
        raise PayloadTooLargeError(
            f"a photo is at most {activation.MAX_PHOTO_BYTES} bytes; this one is {int(match[3])}",
            field="Content-Range",
            rule="photo.too-large",
            limit=activation.MAX_PHOTO_BYTES,
        )
    chunk = await _read_body(request, whole=match is None)
    if match is None:
        start, total = 0, len(chunk)
    else:
        if int(match[2]) - int(match[1]) + 1 != len(chunk) or int(match[2]) < int(match[1]):
            raise InvalidInputError(
                "Content-Range must be `bytes first-last/total` matching the body",
                field="Content-Range",
                rule="photo.content-range",
            )
        start, total = int(match[1]), int(match[3])
    status = await run_in_threadpool(_store_chunk, ctx, user, sha256, start, total, chunk, now)
    response.status_code = 200 if status.complete else 202
    return status


@router.get("/photos/{sha256}/status", response_model=PhotoStatus)
def photo_status(sha256: Sha256, ctx: Ctx, user: MobileUser) -> PhotoStatus:
    """How many bytes of the photo the server holds, and whether it is complete and verified."""
    with Session(ctx.read_engine) as session:
        return activation.photo_status(session, user, sha256)


@router.get("/photos/{sha256}", response_class=Response, responses={200: {"content": {"image/*": {}}}})
def get_photo(sha256: Sha256, ctx: Ctx, user: MobileUser) -> Response:
    """A verified photo of the caller's organisation."""
    with Session(ctx.read_engine) as session:
        photo = activation.photo_bytes(session, user, sha256)
        return Response(photo.data, media_type=photo.media_type, headers={"ETag": f'"{photo.sha256}"'})
