"""The public resolver (`/01/...` GS1 Digital Link paths) and the buyers' verification API."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from sqlmodel import Session

from services.catalog.rules import gtin_problem
from services.context import Context
from services.deps import Ctx, ReadSessionDep
from services.epcis import mapping
from services.errors import DomainError, InvalidInputError
from services.lots.service import lot_epcis_events
from services.problems import PROBLEM_RESPONSES
from services.registry.models import Principal
from services.verify import page, service
from services.verify.service import VerifyState


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown: stop the scan writer and write every buffered scan."""
    yield
    state: VerifyState | None = getattr(app.state, "verify", None)
    if state is not None:
        await run_in_threadpool(service.stop_writer, state, app.state.ctx.engine)


router = APIRouter(tags=["verify"], responses=PROBLEM_RESPONSES, lifespan=_lifespan)
Gtin = Annotated[str, Path(pattern=r"^[0-9]{14}$", description="GTIN-14")]
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,20}$")]
LINK_TYPES = ("gs1:epcis", "linkset", "gs1:pip", "all")
PUBLIC = Principal(user_id=0, org_id=0, roles=frozenset({"regulator"}))


def verify_state(request: Request) -> VerifyState:
    """The verifier's per-app state and its scan writer, built on first use (nothing is built at import
    time; called on the event loop, which runs one request at a time up to its first await: built once)."""
    state: VerifyState | None = getattr(request.app.state, "verify", None)
    if state is None:
        ctx: Context = request.app.state.ctx
        state = service.new_state(
            ctx.settings.key_dir, ctx.settings.database_url, ctx.keys.log_verifier, ctx.settings.witness_vkeys
        )
        service.flush_scans(state, ctx.engine)  # creates the scan table before any read session needs it
        service.start_writer(state, ctx.engine)
        request.app.state.verify = state
    return state


async def get_state(request: Request) -> VerifyState:
    return verify_state(request)


StateDep = Annotated[VerifyState, Depends(get_state)]

# The resolver's query, declared on each route (no dependency to solve on the busiest public path).
Harvest = Annotated[str | None, Query(alias="7007", pattern=r"^[0-9]{6}$", description="harvest date")]
Country = Annotated[str | None, Query(alias="422", pattern=r"^[0-9]{3}$", description="country of origin")]
KeyId = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9]{1,8}$", description="label key id")]
Sig = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{86}$", description="label signature")]
LinkType = Annotated[str | None, Query(alias="linkType", max_length=40)]


@dataclass(frozen=True, slots=True)
class LinkQuery:
    """The query of a label link: is it signed (`k`, `s`), which `linkType`."""

    signed: bool
    link_type: str | None


def link_query(k: str | None, s: str | None, link_type: str | None) -> LinkQuery:
    """Check `linkType` and that `k` and `s` come together."""
    if link_type is not None and link_type not in LINK_TYPES:
        raise InvalidInputError(f"linkType must be one of {', '.join(LINK_TYPES)}", field="linkType")
    if (k is None) != (s is None):
        raise InvalidInputError("a signed link carries both `k` and `s`", field="s" if s is None else "k")
    return LinkQuery(s is not None, link_type)


def _label_keys(ctx: Context) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in ctx.keys.label_public_keys().items()}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept.split("application/json")[0]


async def _resolve(
    request: Request, link: LinkQuery, gtin: str, lot: str | None, serial: str | None
) -> Response:
    """A scan whose verdict is cached for the current ledger version is answered on the event loop (two
    tiny reads of the ledger's head, no session); everything else runs in a worker thread."""
    problem = gtin_problem(gtin)
    if problem:
        raise InvalidInputError(f"GTIN {gtin}: {problem}", field="gtin")
    ctx: Context = request.app.state.ctx
    state = verify_state(request)
    if link.link_type in (None, "gs1:pip") and _wants_json(request):
        body = service.cached_scan_json(
            state,
            ctx.engine,
            ctx.log,
            gtin,
            lot,
            serial,
            uri=_signed_uri(ctx, request) if link.signed else None,
            label_keys=lambda: _label_keys(ctx),
            address=request.client.host if request.client else None,
            region=request.headers.get("x-geo-region"),
            user_agent=request.headers.get("user-agent"),
            now=service.now_utc(),
        )
        if body is not None:
            return Response(body, media_type="application/json")
    return await run_in_threadpool(_resolve_in_session, request, ctx, state, link, gtin, lot, serial)


def _signed_uri(ctx: Context, request: Request) -> str:
    # `request.url.path` and `.query` without building a URL object (the route patterns admit no `?` or `#`)
    scope = request.scope
    return f"{ctx.settings.public_base_url.rstrip('/')}{scope['path']}?{scope['query_string'].decode()}"


def _resolve_in_session(
    request: Request,
    ctx: Context,
    state: VerifyState,
    link: LinkQuery,
    gtin: str,
    lot: str | None,
    serial: str | None,
) -> Response:
    version = service.ledger_version(ctx.log)  # before any domain read: cached values are never older
    with Session(ctx.read_engine) as session:
        return _resolve_sync(request, session, ctx, state, link, version, gtin, lot, serial)


def _resolve_sync(
    request: Request,
    session: Session,
    ctx: Context,
    state: VerifyState,
    link: LinkQuery,
    version: service.Version,
    gtin: str,
    lot: str | None,
    serial: str | None,
) -> Response:
    target = service.resolve_cached(state, session, version, gtin, lot, serial)
    base = ctx.settings.public_base_url.rstrip("/")
    here = f"{base}{request.url.path}"
    if link.link_type == "gs1:epcis":
        if target.lot is None:
            raise DomainError("no lot is bound to this link: there are no events to show", field="linkType")
        events = lot_epcis_events(session, PUBLIC, target.lot.code)
        document = mapping.document(events, created=service.now_utc())
        return JSONResponse(document, media_type="application/ld+json")
    if link.link_type in ("linkset", "all"):
        links: dict[str, Any] = {
            "anchor": here,
            "https://gs1.org/voc/pip": [{"href": here, "type": "text/html", "hreflang": ["zh", "en"]}],
            "https://gs1.org/voc/verificationService": [{"href": here, "type": "application/json"}],
        }
        if target.lot is not None:
            links["https://gs1.org/voc/epcis"] = [
                {"href": f"{here}?linkType=gs1:epcis", "type": "application/ld+json"}
            ]
            links["https://gs1.org/voc/certificationInfo"] = [
                {"href": f"{base}/api/v1/verify/{target.lot.code}/bundle", "type": "application/json"}
            ]
        return JSONResponse({"linkset": [links]}, media_type="application/linkset+json")
    uri = _signed_uri(ctx, request) if link.signed else None
    now = service.now_utc()
    service.record_scan(
        state,
        ctx.engine,
        target,
        address=request.client.host if request.client else None,
        region=request.headers.get("x-geo-region"),
        user_agent=request.headers.get("user-agent"),
        now=now,
    )
    if _wants_json(request):
        body = service.verdict_json(
            state, session, ctx.log, target, uri=uri, label_keys=_label_keys(ctx), now=now, version=version
        )
        return Response(body, media_type="application/json")
    verdict = service.verdict(
        state, session, ctx.log, target, uri=uri, label_keys=_label_keys(ctx), now=now, version=version
    )
    return HTMLResponse(page.render(verdict))


RESOLVER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/html": {},
            "application/json": {},
            "application/ld+json": {},
            "application/linkset+json": {},
        }
    }
}


@router.get("/01/{gtin}", response_class=Response, responses=RESOLVER)
async def product(
    request: Request,
    gtin: Gtin,
    harvest: Harvest = None,
    country: Country = None,
    k: KeyId = None,
    s: Sig = None,
    link_type: LinkType = None,
) -> Response:
    """Resolve a product link (HTML page, JSON verdict, linkset)."""
    return await _resolve(request, link_query(k, s, link_type), gtin, None, None)


@router.get("/01/{gtin}/10/{lot}", response_class=Response, responses=RESOLVER)
async def lot_link(
    request: Request,
    gtin: Gtin,
    lot: Code,
    harvest: Harvest = None,
    country: Country = None,
    k: KeyId = None,
    s: Sig = None,
    link_type: LinkType = None,
) -> Response:
    """Resolve a lot link."""
    return await _resolve(request, link_query(k, s, link_type), gtin, lot, None)


@router.get("/01/{gtin}/21/{serial}", response_class=Response, responses=RESOLVER)
async def unit_link(
    request: Request,
    gtin: Gtin,
    serial: Code,
    harvest: Harvest = None,
    country: Country = None,
    k: KeyId = None,
    s: Sig = None,
    link_type: LinkType = None,
) -> Response:
    """Resolve a unit (pre-issued label) link; falls back to lot and product."""
    return await _resolve(request, link_query(k, s, link_type), gtin, None, serial)


@router.get("/01/{gtin}/10/{lot}/21/{serial}", response_class=Response, responses=RESOLVER)
async def lot_unit_link(
    request: Request,
    gtin: Gtin,
    lot: Code,
    serial: Code,
    harvest: Harvest = None,
    country: Country = None,
    k: KeyId = None,
    s: Sig = None,
    link_type: LinkType = None,
) -> Response:
    """Resolve a unit-in-lot link; falls back to lot and product."""
    return await _resolve(request, link_query(k, s, link_type), gtin, lot, serial)


@router.get("/api/v1/verify/{lot}", response_model=dict[str, Any])
def verify_lot(session: ReadSessionDep, ctx: Ctx, state: StateDep, lot: Code) -> dict[str, Any]:
    """The JSON verdict on a lot (no label signature: the lot is named directly; not logged as a scan)."""
    from sqlmodel import select

    from services.catalog.models import Form
    from services.lots.models import Lot

    row = session.execute(select(Lot).where(Lot.code == lot)).scalars().first()
    form = session.get(Form, row.form_id) if row is not None else None
    if row is None or form is None:
        from services.errors import NotFoundError

        raise NotFoundError(f"no lot {lot!r}", field="lot")
    target = service.resolve(session, form.gtin, lot, None)
    return service.verdict(
        state, session, ctx.log, target, uri=None, label_keys=_label_keys(ctx), now=service.now_utc()
    )


@router.get("/api/v1/verify/{lot}/bundle", response_model=dict[str, Any])
def bundle(session: ReadSessionDep, ctx: Ctx, state: StateDep, lot: Code) -> dict[str, Any]:
    """Proof bundle: each event's C2SP tlog-proof (entry, audit path, cosigned checkpoint); verifies offline
    with the keys of /api/v1/keys (`services.verify.rules.verify_bundle`)."""
    return service.proof_bundle(session, ctx.log, state, lot)
