"""The one map from errors to RFC 9457 application/problem+json responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
PAYLOAD_TOO_LARGE_RESPONSE: dict[str, Any] = {
    **PROBLEM_SCHEMA,
    "description": "RFC 9457 problem details: the request body or the declared upload is above a size limit "
    "(`field` and `rule` name which, `limit` gives it in bytes)",
}
RATE_LIMITED_RESPONSE: dict[str, Any] = {
    **PROBLEM_SCHEMA,
    "description": "RFC 9457 problem details: too many attempts; try again after `Retry-After` seconds",
    "headers": {
        "Retry-After": {
            "description": "seconds to wait before trying again (also in the body as `retry_after`)",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
"""FastAPI's default 422 bodies: never sent here, since request-validation errors are 400 problems."""


def problem(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Render one problem document (with `Retry-After` on 503 and `WWW-Authenticate` on 401)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    sent = dict(headers or {})
    if status == 503:
        sent.setdefault("Retry-After", "1")
    if status == 401:
        sent.setdefault("WWW-Authenticate", 'Bearer realm="daodi"')
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=sent)


def _refers_to(node: Any, names: tuple[str, ...]) -> bool:
    """Whether a piece of an OpenAPI document $refs one of the component schemas `names`."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in names:
            return True
        return any(_refers_to(v, names) for v in node.values())
    if isinstance(node, list):
        return any(_refers_to(v, names) for v in node)
    return False


def honest_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Make the document say what the handlers below send, for every operation at once.

    FastAPI documents a 422 `HTTPValidationError` for each operation with parameters or a body, but
    `_validation` renders request-validation errors as 400 problems: drop those 422s (a 422 problem for
    domain rules stays), document 400 for every operation that validates input, 401 and 403 for every
    operation that needs an API key, and remove the then unused validation-error schemas.
    """
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            for status in [s for s, r in responses.items() if _refers_to(r, FASTAPI_VALIDATION_SCHEMAS)]:
                del responses[status]
            if operation.get("parameters") or operation.get("requestBody"):
                responses.setdefault("400", PROBLEM_SCHEMA)
            if operation.get("security"):
                responses.setdefault("401", PROBLEM_SCHEMA)
                responses.setdefault("403", PROBLEM_SCHEMA)
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        rest = {k: v for k, v in document.items() if k != "components"}
        others = {k: v for k, v in schemas.items() if k not in FASTAPI_VALIDATION_SCHEMAS}
        if name in schemas and not _refers_to([rest, others], (name,)):
            del schemas[name]
    return document


def install(app: FastAPI) -> None:
    """Register the exception handlers on an app, and make its OpenAPI document describe them."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = honest_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(
            request, exc.status, exc.slug, exc.title, exc.detail, exc.headers, field=exc.field, **exc.extra
        )

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
        # exc.headers carries what the status requires, e.g. `Allow` on a 405.
        return problem(request, exc.status_code, slug, str(exc.detail), str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's ServerErrorMiddleware sends this and then re-raises `exc`, so the server logs the
        # traceback; the client gets a problem document without internals.
        return problem(
            request, 500, "internal-error", "Internal server error", "an unexpected error occurred"
        )
