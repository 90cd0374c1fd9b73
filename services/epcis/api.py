"""EPCIS 2.0 HTTP API: capture documents, the standard event query (SimpleEventQuery over REST)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from services.deps import Ctx, CurrentUser, ReadSessionDep, SessionDep
from services.epcis import service
from services.epcis.models import CaptureResult
from services.epcis.rules import parse_query
from services.errors import InvalidInputError
from services.fields import TEXT
from services.problems import PROBLEM_RESPONSES

router = APIRouter(prefix="/epcis", tags=["epcis"], responses=PROBLEM_RESPONSES)
MEDIA_TYPE = "application/ld+json"
EXAMPLE_DOCUMENT: dict[str, Any] = {
    "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-06-12T08:00:00+08:00",
    "epcisBody": {
        "eventList": [
            {
                "type": "ObjectEvent",
                "action": "OBSERVE",
                "bizStep": "receiving",
                "eventTime": "2026-06-12T08:00:00+08:00",
                "eventTimeZoneOffset": "+08:00",
                "epcList": [],
                "quantityList": [
                    {
                        "epcClass": "https://id.gs1.org/01/06901234000139/10/QS26P0007",
                        "quantity": 50,
                        "uom": "KGM",
                    }
                ],
            }
        ]
    },
}
Multi = Annotated[
    str | None,
    Query(pattern=TEXT, description="one value, or several separated by `|` (or repeat the parameter)"),
]
Time = Annotated[str | None, Query(pattern=TEXT, description="RFC 3339 date-time with offset")]


@router.post("/capture", response_model=CaptureResult, status_code=202)
def capture(
    session: SessionDep,
    ctx: Ctx,
    user: CurrentUser,
    response: Response,
    document: Annotated[dict[str, Any], Body(examples=[EXAMPLE_DOCUMENT])],
) -> CaptureResult:
    """Capture an EPCIS 2.0 JSON-LD document (`application/ld+json` or `application/json`).

    Every event is stored and indexed; events whose eventID is already known are counted as duplicates."""
    result = service.capture(
        session, user, document, log=ctx.log, now=datetime.now(UTC), new_id=lambda: str(uuid.uuid4())
    )
    response.headers["Location"] = f"/epcis/capture/{result.capture_id}"
    return result


@router.get("/capture/{capture_id}", response_model=CaptureResult)
def get_capture(
    session: ReadSessionDep, user: CurrentUser, capture_id: Annotated[str, Path(max_length=40, pattern=TEXT)]
) -> CaptureResult:
    """The outcome of a capture."""
    return service.get_capture(session, user, capture_id)


@router.get(
    "/events",
    response_class=JSONResponse,
    responses={200: {"content": {MEDIA_TYPE: {}}, "description": "an EPCISQueryDocument"}},
)
def query_events(
    request: Request,
    session: ReadSessionDep,
    user: CurrentUser,
    eventType: Multi = None,
    GE_eventTime: Time = None,
    LT_eventTime: Time = None,
    GE_recordTime: Time = None,
    LT_recordTime: Time = None,
    EQ_action: Multi = None,
    EQ_bizStep: Multi = None,
    EQ_disposition: Multi = None,
    EQ_readPoint: Multi = None,
    EQ_bizLocation: Multi = None,
    EQ_eventID: Multi = None,
    MATCH_epc: Multi = None,
    MATCH_parentID: Multi = None,
    MATCH_inputEPC: Multi = None,
    MATCH_outputEPC: Multi = None,
    MATCH_anyEPC: Multi = None,
    MATCH_epcClass: Multi = None,
    MATCH_inputEPCClass: Multi = None,
    MATCH_outputEPCClass: Multi = None,
    MATCH_anyEPCClass: Multi = None,
    orderBy: Annotated[str | None, Query(pattern=TEXT, description="eventTime or recordTime")] = None,
    orderDirection: Annotated[str | None, Query(pattern=TEXT, description="ASC or DESC")] = None,
    eventCountLimit: Annotated[
        str | None, Query(pattern=TEXT, description="at most this many events")
    ] = None,
    perPage: Annotated[int, Query(ge=1, le=200)] = 30,
    nextPageToken: Annotated[str | None, Query(max_length=20, pattern=TEXT)] = None,
) -> JSONResponse:
    """Events matching the standard query parameters as an EPCISQueryDocument; `Link: rel="next"` pages."""
    params: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name not in ("perPage", "nextPageToken"):
            params.setdefault(name, []).append(value)
    query, problems = parse_query(params)
    if problems:
        name, reason = problems[0]
        raise InvalidInputError(reason, field=name, rule="epcis.query-parameter")
    offset = int(nextPageToken) if nextPageToken and nextPageToken.isdigit() else 0
    events, more = service.query_events(session, user, query, limit=perPage, offset=offset)
    headers = {}
    if more:
        following = request.url.include_query_params(nextPageToken=str(offset + perPage), perPage=perPage)
        headers["Link"] = f'<{following}>; rel="next"'
    body = service.query_document(events, now=datetime.now(UTC))
    return JSONResponse(body, media_type=MEDIA_TYPE, headers=headers)
