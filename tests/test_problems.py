"""services.problems: every error is an RFC 9457 problem, and the OpenAPI document says so (no 422s)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel

from services import problems
from services.app import create_app
from services.settings import Settings

PROBLEM = "application/problem+json"


class Body(BaseModel):
    name: str


def _toy() -> FastAPI:
    """An app whose routes declare no problem responses of their own, as a careless router would."""
    app = FastAPI()
    problems.install(app)
    router = APIRouter()

    @router.post("/things")
    def create(body: Body, n: int = Query(ge=1)) -> dict[str, Any]:
        return {"name": body.name, "n": n}

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    app.include_router(router)
    return app


def test_fastapi_validation_422s_are_replaced_by_400_problems_in_the_document() -> None:
    document = _toy().openapi()
    responses = document["paths"]["/things"]["post"]["responses"]
    assert "422" not in responses
    assert PROBLEM in responses["400"]["content"]
    schemas = document.get("components", {}).get("schemas", {})
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert "400" not in document["paths"]["/boom"]["get"]["responses"]  # nothing to validate there


def test_the_documented_400_is_what_a_validation_error_returns() -> None:
    response = TestClient(_toy()).post("/things?n=0", json={"name": "x"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == "n"


def test_an_unhandled_exception_is_a_500_problem_without_internals() -> None:
    response = TestClient(_toy(), raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 500 and body["type"].endswith("/internal-error")
    assert "secret" not in response.text


def test_a_wrong_method_is_a_405_problem_with_allow() -> None:
    response = TestClient(_toy()).delete("/things")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["allow"] == "POST"


def test_the_platform_document_has_no_fastapi_422_and_documents_auth_problems(settings: Settings) -> None:
    app = create_app(settings)
    try:
        document = app.openapi()
        assert "HTTPValidationError" not in str(document)
        for path, item in document["paths"].items():
            for method, operation in item.items():
                responses = operation["responses"]
                if operation.get("parameters") or operation.get("requestBody"):
                    assert PROBLEM in responses["400"]["content"], (method, path)
                if operation.get("security"):
                    assert {"401", "403"} <= responses.keys(), (method, path)
        with TestClient(app) as client:
            response = client.get("/api/v1/users/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    finally:
        app.state.ctx.stop()
