"""Catalog and registry HTTP API through TestClient: auth, problem+json with fields, pagination, scoping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from services.app import create_app
from services.registry.service import bootstrap_admin
from services.settings import Settings

PROBLEM = "application/problem+json"


def square(lon: float, lat: float, size: float = 0.002) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


class Api:
    def __init__(self, client: TestClient, admin_key: str) -> None:
        self.client = client
        self.admin = {"Authorization": f"Bearer {admin_key}"}

    def org_with_user(self, uscc: str, roles: list[str]) -> tuple[int, dict[str, str]]:
        org = self.client.post(
            "/api/v1/orgs", json={"uscc": uscc, "name": uscc, "kind": "cooperative"}, headers=self.admin
        )
        assert org.status_code == 201, org.text
        user = self.client.post(
            "/api/v1/users",
            json={"org_id": org.json()["id"], "name": "u", "roles": roles},
            headers=self.admin,
        )
        assert user.status_code == 201, user.text
        return org.json()["id"], {"X-Api-Key": user.json()["api_key"]}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    app = create_app(
        Settings(database_url=f"sqlite:///{tmp_path}/t.db", key_dir=tmp_path / "keys", background=False)
    )
    with Session(app.state.ctx.engine) as session:
        _, _, key = bootstrap_admin(
            session, uscc="91350100M000100Y43", org_name="Operator", user_name="A", now=datetime.now(UTC)
        )
        session.commit()
    with TestClient(app) as client:
        yield Api(client, key)


def test_the_catalog_is_public_and_paginated(api: Api) -> None:
    page = api.client.get("/api/v1/catalog/forms", params={"limit": 5, "offset": 5}).json()
    assert page["total"] == 16 and len(page["items"]) == 5 and page["offset"] == 5
    herb = api.client.get("/api/v1/catalog/herbs/notoginseng").json()
    assert herb["region_code"] == "wenshan-gi" and len(herb["seasons"]) == 2
    spec = api.client.get("/api/v1/catalog/specs/epimedium.fat-fried-shreds").json()
    assert spec["name"] == "ChP-2020" and any(lim["analyte"] == "so2" for lim in spec["limits"])


def test_a_page_larger_than_the_maximum_is_a_problem_naming_limit(api: Api) -> None:
    response = api.client.get("/api/v1/catalog/herbs", params={"limit": 10_000})
    assert response.status_code == 400 and response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == "limit"


def test_an_unknown_form_is_not_found_as_a_problem(api: Api) -> None:
    response = api.client.get("/api/v1/catalog/forms/ginseng.dried")
    assert response.status_code == 404 and response.headers["content-type"] == PROBLEM
    assert response.json()["field"] == "form_id"


def test_registry_endpoints_need_an_api_key(api: Api) -> None:
    for path in (
        "/api/v1/orgs",
        "/api/v1/users",
        "/api/v1/bases",
        "/api/v1/plots",
        "/api/v1/pesticides",
        "/api/v1/devices",
    ):
        response = api.client.get(path)
        assert response.status_code == 401 and response.headers["content-type"] == PROBLEM, path
    assert api.client.get("/api/v1/orgs", headers={"X-Api-Key": "dt_wrong"}).status_code == 401
    assert api.client.get("/api/v1/users/me", headers=api.admin).json()["roles"] == ["admin"]


def test_a_bad_unified_social_credit_code_is_a_problem_naming_the_field_and_rule(api: Api) -> None:
    response = api.client.post(
        "/api/v1/orgs", json={"uscc": "91350100M000100Y44", "name": "x", "kind": "lab"}, headers=api.admin
    )
    body = response.json()
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    assert (body["field"], body["rule"]) == ("uscc", "uscc.check")


def test_a_grower_registers_a_base_and_a_plot_in_the_daodi_region(api: Api) -> None:
    _, grower = api.org_with_user("91440300708461136T", ["grower"])
    base = api.client.post(
        "/api/v1/bases",
        json={"code": "PY-1", "name": "Pingyu", "kind": "production", "admin_code": "411723"},
        headers=grower,
    )
    assert base.status_code == 201, base.text
    plot = api.client.post(
        "/api/v1/plots",
        json={
            "base_id": base.json()["id"],
            "code": "PY-1-01",
            "name": "east field",
            "admin_code": "411723",
            "geometry": square(114.6, 32.95),
        },
        headers=grower,
    )
    assert plot.status_code == 201, plot.text
    assert [m["herbs"] for m in plot.json()["regions"]] == [["epimedium"]]
    assert plot.json()["area_mu"] > 0


def test_invalid_geometry_is_rejected_and_nothing_is_written(api: Api, tmp_path: Path) -> None:
    _, grower = api.org_with_user("91440300708461136T", ["grower"])
    base = api.client.post(
        "/api/v1/bases",
        json={"code": "B", "name": "b", "kind": "production", "admin_code": "411725"},
        headers=grower,
    ).json()
    log = api.client.app.state.ctx.log  # type: ignore[attr-defined]
    size = log.size()
    open_ring = {
        "type": "Polygon",
        "coordinates": [[[114.0, 32.8], [114.1, 32.8], [114.1, 32.9], [114.0, 32.9]]],
    }
    response = api.client.post(
        "/api/v1/plots",
        json={"base_id": base["id"], "code": "X", "name": "x", "admin_code": "411725", "geometry": open_ring},
        headers=grower,
    )
    body = response.json()
    assert response.status_code == 422 and body["rule"] == "geometry.ring-not-closed"
    assert body["field"] == "geometry.coordinates[0]"
    assert api.client.get("/api/v1/plots", headers=grower).json()["total"] == 0
    assert log.size() == size


def test_writing_into_another_organisations_base_is_forbidden(api: Api) -> None:
    _, grower = api.org_with_user("91440300708461136T", ["grower"])
    _, outsider = api.org_with_user("91110000802100433B", ["grower"])
    base = api.client.post(
        "/api/v1/bases",
        json={"code": "B", "name": "b", "kind": "production", "admin_code": "411725"},
        headers=grower,
    ).json()
    response = api.client.post(
        "/api/v1/plots",
        json={
            "base_id": base["id"],
            "code": "X",
            "name": "x",
            "admin_code": "411725",
            "geometry": square(114.0, 32.8),
        },
        headers=outsider,
    )
    assert response.status_code == 403 and response.headers["content-type"] == PROBLEM
    assert (response.json()["field"], response.json()["rule"]) == ("base_id", "access.organisation")
    assert api.client.get("/api/v1/plots", headers=api.admin).json()["total"] == 0


def test_a_duplicate_base_code_is_a_conflict(api: Api) -> None:
    _, grower = api.org_with_user("91440300708461136T", ["grower"])
    body = {"code": "B", "name": "b", "kind": "production", "admin_code": "411725"}
    assert api.client.post("/api/v1/bases", json=body, headers=grower).status_code == 201
    response = api.client.post("/api/v1/bases", json=body, headers=grower)
    assert response.status_code == 409 and response.json()["field"] == "code"


def test_a_plot_code_of_another_organisation_is_a_conflict(api: Api) -> None:
    # Plot chains (`plot:<code>`) and sensor summaries are keyed by the code, so it names one plot only.
    plots = []
    for uscc in ("91440300708461136T", "91110000802100433B"):
        _, grower = api.org_with_user(uscc, ["grower"])
        base = api.client.post(
            "/api/v1/bases",
            json={"code": "B", "name": "b", "kind": "production", "admin_code": "411725"},
            headers=grower,
        ).json()
        plot = {"base_id": base["id"], "code": "QS-1-A", "name": "a", "admin_code": "411725"}
        plots.append(
            api.client.post("/api/v1/plots", json={**plot, "geometry": square(114.0, 32.8)}, headers=grower)
        )
    assert plots[0].status_code == 201
    assert plots[1].status_code == 409 and plots[1].headers["content-type"] == PROBLEM
    assert (plots[1].json()["field"], plots[1].json()["rule"]) == ("code", "registry.duplicate")
    assert "another organisation" in plots[1].json()["detail"]


def test_a_quality_officer_revises_a_spec_over_http(api: Api) -> None:
    _, quality = api.org_with_user("91440300708461136T", ["quality"])
    body = {
        "limits": [
            {"analyte": "moisture", "unit": "%", "max": 13.0},
            {"analyte": "so2", "unit": "mg/kg", "max": 150},
        ],
        "reason": "checked",
    }
    created = api.client.post("/api/v1/catalog/specs/prunella.dried/versions", json=body, headers=quality)
    assert created.status_code == 201 and created.json()["version"] == 2
    versions = api.client.get("/api/v1/catalog/specs/prunella.dried/versions").json()
    assert [v["version"] for v in versions["items"]] == [1, 2]
    assert (
        api.client.get("/api/v1/catalog/specs/prunella.dried/versions/1").json()["limits"]
        != created.json()["limits"]
    )
    bad = api.client.post(
        "/api/v1/catalog/specs/prunella.dried/versions",
        json={**body, "limits": [{"analyte": "x", "unit": "%", "min": 5, "max": 1}]},
        headers=quality,
    )
    assert bad.status_code == 400 and bad.json()["field"].startswith("limits")
    _, grower = api.org_with_user("91110000802100433B", ["grower"])
    assert (
        api.client.post(
            "/api/v1/catalog/specs/prunella.dried/versions", json=body, headers=grower
        ).status_code
        == 403
    )


def test_the_openapi_document_lists_the_registry_and_catalog(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/orgs",
        "/api/v1/plots",
        "/api/v1/devices",
        "/api/v1/pesticides",
        "/api/v1/catalog/specs/{form_id}/versions",
    ):
        assert path in paths


def test_control_characters_in_text_and_ids_are_rejected_before_the_database(api: Api) -> None:
    org = {"uscc": "91440300708461136T", "name": "a\u0000b", "kind": "cooperative"}
    response = api.client.post("/api/v1/orgs", json=org, headers=api.admin)
    assert response.status_code == 400 and response.json()["field"] == "name"
    assert api.client.get("/api/v1/catalog/herbs/a%00b").status_code == 400
    assert api.client.get("/api/v1/catalog/forms", params={"herb": "a\u0001"}).status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orgs/2147483648",
        "/api/v1/users/4611686018427387903",
        "/api/v1/plots?base_id=2147483648",
        "/api/v1/catalog/regions/queshan-gi/versions/2147483648",
        "/api/v1/catalog/specs/prunella.dried/versions/2147483648",
    ],
)
def test_ids_beyond_an_integer_column_are_400s_not_database_errors(api: Api, path: str) -> None:
    response = api.client.get(path, headers=api.admin)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM


def test_unicode_digits_are_not_an_administrative_code(api: Api) -> None:
    base = {"code": "B1", "name": "b", "kind": "production", "admin_code": "٤١١٧٢٥"}
    response = api.client.post("/api/v1/bases", json=base, headers=api.admin)
    assert response.status_code == 422 and response.json()["field"] == "admin_code"
