"""The one map from errors to RFC 9457 application/problem+json responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import InvalidProofError, LedgerError, MalformedError, PushbackError
from services.errors import DomainError

PROBLEM_BASE = "https://daodi.dev/problems/"
MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)

PROBLEM_SCHEMA: dict[str, Any] = {
    "description": "RFC 9457 problem details",
    "content": {
        MEDIA_TYPE: {
            "schema": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                },
                "required": ["type", "title", "status"],
            }
        }
    },
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: PROBLEM_SCHEMA for status in (400, 401, 403, 404, 409, 410, 422, 503)
}


def problem(request: Request, status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """Render one problem document."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    """Register the exception handlers on an app."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(request, exc.status, exc.slug, exc.title, exc.detail, field=exc.field, **exc.extra)

    @app.exception_handler(LedgerError)
    async def _ledger(request: Request, exc: LedgerError) -> JSONResponse:
        if isinstance(exc, PushbackError):
            return problem(request, 503, "ledger-busy", "Ledger busy", str(exc))
        if isinstance(exc, InvalidProofError | MalformedError):
            return problem(request, 400, "invalid-proof-request", "Invalid proof request", str(exc))
        log.error("ledger error serving %s: %s", request.url.path, exc)
        return problem(request, 500, "ledger-error", "Ledger error", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")),
                "message": e.get("msg", ""),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        return problem(
            request,
            400,
            "invalid-request",
            "Invalid request",
            f"{first['field']}: {first['message']}" if first["field"] else str(first["message"]),
            field=first["field"] or None,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed", 406: "not-acceptable"}.get(
            exc.status_code, "http-error"
        )
        return problem(request, exc.status_code, slug, str(exc.detail), str(exc.detail))
