"""The grower mobile API through TestClient: sign-in and tokens, reference data, scans, harvest by scanning,
offline sync (idempotent, ordered, partial), photo uploads; plus the pure rules behind them."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mobile_world import HARVEST_DAY, JPEG, MobileWorld, sha256
from sqlalchemy import func, select
from sqlmodel import Session

from services.geometry import parse_geometry
from services.labels.activation import distance_to_polygon_m
from services.lots.models import Lot
from services.lots.rules import planting_age_findings
from services.settings import Settings

PROBLEM = "application/problem+json"


@pytest.fixture
def mw(settings: Settings) -> MobileWorld:
    return MobileWorld(settings)


def lot_count(mw: MobileWorld) -> int:
    with Session(mw.ctx.engine) as s:
        return int(s.execute(select(func.count()).select_from(Lot)).scalar_one())


def upload(mw: MobileWorld, headers: dict[str, str], data: bytes, chunk: int = 4096) -> list[int]:
    statuses = []
    digest = sha256(data)
    for start in range(0, len(data), chunk):
        part = data[start : start + chunk]
        r = mw.client.put(
            f"/mobile/v1/photos/{digest}",
            content=part,
            headers={**headers, "Content-Range": f"bytes {start}-{start + len(part) - 1}/{len(data)}"},
        )
        statuses.append(r.status_code)
    return statuses


# -- the whole flow ---------------------------------------------------------------------------------------


def test_whole_harvest_flow_from_sign_in_to_activated_labels(mw: MobileWorld) -> None:
    tokens = mw.sign_in(login="+86 138-0013-8000")  # the phone number works as the login too
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert mw.client.get("/mobile/v1/me", headers=headers).json()["roles"] == ["grower"]

    ref = mw.client.get("/mobile/v1/reference", headers={**headers, "Accept-Encoding": "gzip"})
    assert ref.status_code == 200 and ref.headers["etag"]
    doc = ref.json()
    assert [p["id"] for p in doc["plots"]] == [mw.world.plot_id, mw.world.outside_plot_id]
    assert doc["plots"][0]["geometry"]["type"] == "Polygon"
    [planting] = doc["plantings"]
    assert planting["herb"] == "prunella" and planting["phi_clear_from"] == "2026-05-15"
    assert planting["ready"] is True and planting["in_season"] is True
    assert any(p["registration_no"] == "PD20170001" for p in doc["pesticides"])
    raw = mw.client.get("/mobile/v1/reference", headers={**headers, "Accept-Encoding": "gzip"}).headers
    assert raw["content-encoding"] == "gzip"
    again = mw.client.get("/mobile/v1/reference", headers={**headers, "If-None-Match": ref.headers["etag"]})
    assert again.status_code == 304 and again.content == b""

    scan = mw.client.post("/mobile/v1/scan", json={"uri": mw.labels[0]}, headers=headers)
    assert scan.status_code == 200
    assert (scan.json()["status"], scan.json()["yours"], scan.json()["lot_code"]) == ("issued", True, None)

    assert upload(mw, headers, JPEG) == [202, 202, 200]
    record = mw.record(mw.labels[:3], photos=[sha256(JPEG)])
    response = mw.client.post("/mobile/v1/harvests", json=record, headers=headers)
    assert response.status_code == 201, response.text
    result = response.json()
    checks = {c["check"]: c["result"] for c in result["checks"]}
    assert checks == {
        "label.signature": "pass",
        "label.unused": "pass",
        "gps.inside-plot": "pass",
        "planting.age": "pass",
        "photos": "pass",
        "origin.daodi-region": "pass",
        "phi": "pass",
        "inputs.banned": "pass",
        "harvest.season": "pass",
    }
    assert result["daodi"] is True and len(result["labels"]) == 3 and result["form"] == "prunella.fresh"

    for uri in mw.labels[:3]:
        scanned = mw.client.post("/mobile/v1/scan", json={"uri": uri}, headers=headers).json()
        assert (scanned["status"], scanned["lot_code"]) == ("activated", result["lot_code"])
    entry = json.loads(mw.ctx.log.entry(result["activation_ledger_index"]))
    assert entry["kind"] == "labels.activated" and entry["body"]["photos_sha256"] == [sha256(JPEG)]
    text = json.dumps(entry, ensure_ascii=False)
    assert "13800138000" not in text and "grower.one" not in text
    harvest_entry = json.loads(mw.ctx.log.entry(result["harvest_ledger_index"]))
    assert entry["lot_prev"] is not None and harvest_entry["body"]["lots"][0]["lot"] == result["lot_code"]

    replay = mw.client.post("/mobile/v1/harvests", json=record, headers=headers)
    assert replay.status_code == 200 and replay.json() == result


def test_gps_outside_the_plot_is_a_warning_with_the_distance(mw: MobileWorld) -> None:
    headers = mw.headers()
    record = mw.record(mw.labels[:1], gps={"lon": 114.0, "lat": 32.7982, "accuracy_m": 15})
    result = mw.client.post("/mobile/v1/harvests", json=record, headers=headers)
    assert result.status_code == 201, result.text
    [gps] = [c for c in result.json()["checks"] if c["check"] == "gps.inside-plot"]
    assert gps["result"] == "warning" and gps["rule"] == "harvest.gps-outside-plot"
    assert 190 < gps["distance_m"] < 210 and gps["accuracy_m"] == 15


# -- idempotency and sync ---------------------------------------------------------------------------------


def test_three_concurrent_identical_submissions_create_exactly_one_lot(mw: MobileWorld) -> None:
    headers = mw.headers()
    body = {"records": [mw.record(mw.labels[:2])]}
    before = lot_count(mw)
    barrier = threading.Barrier(3)
    answers: list[dict[str, Any]] = []

    def send() -> None:
        client = TestClient(mw.app)
        barrier.wait(timeout=10)
        answers.append(client.post("/mobile/v1/sync", json=body, headers=headers).json())

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert lot_count(mw) == before + 1
    statuses = sorted(a["results"][0]["status"] for a in answers)
    assert statuses == [200, 200, 201]
    assert len({a["results"][0]["result"]["lot_code"] for a in answers}) == 1


def test_same_id_with_different_content_is_409_with_the_stored_version(mw: MobileWorld) -> None:
    headers = mw.headers()
    record = mw.record(mw.labels[:1])
    assert mw.client.post("/mobile/v1/harvests", json=record, headers=headers).status_code == 201
    changed = {**record, "quantity_kg": "301"}
    response = mw.client.post("/mobile/v1/harvests", json=changed, headers=headers)
    assert response.status_code == 409 and response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["rule"] == "sync.id-reused" and problem["stored"]["quantity_kg"] == "300"
    assert problem["stored"]["result"]["labels"][0]["serial"] in mw.labels[0]
    synced = mw.client.post("/mobile/v1/sync", json={"records": [changed, record]}, headers=headers).json()
    assert [r["status"] for r in synced["results"]] == [409, 200]
    assert synced["results"][0]["stored"]["id"] == record["id"]


def test_sync_processes_in_recorded_order_with_partial_success(mw: MobileWorld) -> None:
    headers = mw.headers()
    early = mw.record(mw.labels[:1], recorded_at=(HARVEST_DAY + timedelta(minutes=1)).isoformat())
    late = mw.record(mw.labels[:2], recorded_at=(HARVEST_DAY + timedelta(minutes=9)).isoformat())
    forged = mw.record(
        [mw.labels[2][:-3] + "AAA"], recorded_at=(HARVEST_DAY + timedelta(minutes=5)).isoformat()
    )
    fine = mw.record(mw.labels[3:4], recorded_at=(HARVEST_DAY + timedelta(minutes=7)).isoformat())
    before = lot_count(mw)
    out = mw.client.post(
        "/mobile/v1/sync", json={"records": [late, fine, forged, early]}, headers=headers
    ).json()
    assert [r["id"] for r in out["results"]] == [early["id"], forged["id"], fine["id"], late["id"]]
    assert [r["status"] for r in out["results"]] == [201, 422, 201, 409]
    assert out["results"][1]["problem"]["rule"] == "label.signature"
    assert out["results"][3]["problem"]["rule"] == "label.already-activated"
    assert (out["created"], out["failed"], out["conflicts"]) == (2, 1, 1)
    assert lot_count(mw) == before + 2
    # A refused record is not stored: fixed, it goes through under the same id.
    fixed = {**late, "labels": mw.labels[4:5]}
    assert (
        mw.client.post("/mobile/v1/sync", json={"records": [fixed]}, headers=headers).json()["created"] == 1
    )


def test_harvest_inside_the_phi_is_refused_with_the_rule_named(mw: MobileWorld) -> None:
    mw.world.pesticide(when="2026-06-05T07:30:00")  # imidacloprid: 14 days for prunella
    headers = mw.headers()
    before = (lot_count(mw), mw.ctx.log.size())
    response = mw.client.post("/mobile/v1/harvests", json=mw.record(mw.labels[:2]), headers=headers)
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["rule"] == "phi.too-early" and "2026-06-19" in problem["detail"]
    assert {"check": "phi", "result": "fail"}.items() <= next(
        c for c in problem["checks"] if c["check"] == "phi"
    ).items()
    assert (lot_count(mw), mw.ctx.log.size()) == before
    scanned = mw.client.post("/mobile/v1/scan", json={"uri": mw.labels[0]}, headers=headers).json()
    assert scanned["status"] == "issued"


# -- tokens -----------------------------------------------------------------------------------------------


def test_access_tokens_expire_and_refresh_rotates(mw: MobileWorld) -> None:
    tokens = mw.sign_in()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert mw.client.get("/mobile/v1/me", headers=auth).status_code == 200
    mw.clock.advance(minutes=16)
    expired = mw.client.get("/mobile/v1/me", headers=auth)
    assert expired.status_code == 401 and expired.json()["rule"] == "token.expired"
    assert expired.headers["www-authenticate"].startswith("Bearer")
    fresh = mw.client.post("/mobile/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200 and fresh.json()["refresh_token"] != tokens["refresh_token"]
    assert (
        mw.client.get(
            "/mobile/v1/me", headers={"Authorization": f"Bearer {fresh.json()['access_token']}"}
        ).status_code
        == 200
    )


def test_reusing_an_old_refresh_token_revokes_the_family(mw: MobileWorld) -> None:
    first = mw.sign_in()
    second = mw.client.post("/mobile/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    reuse = mw.client.post("/mobile/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401 and reuse.json()["rule"] == "token.reuse"
    # The thief's replay also kills the legitimate holder's newer tokens.
    newer = mw.client.post("/mobile/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert newer.status_code == 401 and newer.json()["rule"] == "token.revoked"
    me = mw.client.get("/mobile/v1/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 401 and me.json()["rule"] == "token.revoked"
    # Another install's sign-in is untouched.
    assert mw.client.get("/mobile/v1/me", headers=mw.headers()).status_code == 200


def test_sign_out_revokes_and_wrong_passwords_fail(mw: MobileWorld) -> None:
    tokens = mw.sign_in()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (
        mw.client.post(
            "/mobile/v1/auth/sign-out", json={"refresh_token": tokens["refresh_token"]}
        ).status_code
        == 204
    )
    assert mw.client.get("/mobile/v1/me", headers=auth).json()["rule"] == "token.revoked"
    refreshed = mw.client.post("/mobile/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    for login, password in (("grower.one", "wrong password"), ("nobody", "correct horse battery")):
        bad = mw.client.post(
            "/mobile/v1/auth/sign-in", json={"login": login, "password": password, "install_id": "x"}
        )
        assert bad.status_code == 401 and bad.json()["rule"] == "account.sign-in"
    assert mw.client.get("/mobile/v1/me", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    assert mw.client.get("/mobile/v1/me").status_code == 401


def test_an_admin_sets_credentials_with_an_api_key(mw: MobileWorld) -> None:
    grower = mw.world.grower
    url = f"/mobile/v1/users/{grower.user_id}/credentials"
    body = {"username": "grower.two", "password": "another long password"}
    forbidden = mw.client.put(url, json=body, headers=mw.world.headers(mw.world.outsider))
    assert forbidden.status_code == 403
    assert mw.client.put(url, json=body, headers=mw.world.headers(mw.world.admin)).status_code == 204
    ok = mw.client.post(
        "/mobile/v1/auth/sign-in",
        json={"login": "grower.two", "password": "another long password", "install_id": "i"},
    )
    assert ok.status_code == 200


# -- reach ------------------------------------------------------------------------------------------------


def test_another_organisations_plots_and_labels_are_out_of_reach(mw: MobileWorld) -> None:
    headers = mw.headers()
    scan = mw.client.post("/mobile/v1/scan", json={"uri": mw.other_labels[0]}, headers=headers)
    assert scan.status_code == 403 and scan.json()["rule"] == "access.organisation"
    foreign_label = mw.client.post(
        "/mobile/v1/harvests", json=mw.record(mw.other_labels[:1]), headers=headers
    )
    assert foreign_label.status_code == 403 and foreign_label.json()["rule"] == "access.organisation"
    foreign_plot = mw.client.post(
        "/mobile/v1/harvests", json=mw.record(mw.labels[:1], plot_id=mw.world.other_plot_id), headers=headers
    )
    assert foreign_plot.status_code == 422 and foreign_plot.json()["rule"] == "registry.unknown-plot"
    doc = mw.client.get("/mobile/v1/reference", headers=headers).json()
    assert mw.world.other_plot_id not in [p["id"] for p in doc["plots"]]
    theirs = mw.client.get("/mobile/v1/reference", headers=mw.headers("outsider")).json()
    assert [p["id"] for p in theirs["plots"]] == [mw.world.other_plot_id]
    assert (
        mw.client.post(
            "/mobile/v1/scan", json={"uri": mw.labels[0]}, headers=mw.headers("outsider")
        ).status_code
        == 403
    )


# -- photos -----------------------------------------------------------------------------------------------


def test_oversized_or_mismatched_photos_are_rejected(mw: MobileWorld) -> None:
    headers = mw.headers()
    digest = sha256(JPEG)
    too_big = mw.client.put(
        f"/mobile/v1/photos/{digest}",
        content=b"x" * 100,
        headers={**headers, "Content-Range": f"bytes 0-99/{9 * 1024 * 1024}"},
    )
    assert too_big.status_code == 413 and too_big.json()["rule"] == "photo.too-large"
    chunk = mw.client.put(f"/mobile/v1/photos/{digest}", content=b"\xff" * (1024 * 1024 + 1), headers=headers)
    assert chunk.status_code == 413 and chunk.json()["rule"] == "photo.chunk-size"
    mismatched = mw.client.put(f"/mobile/v1/photos/{digest}", content=JPEG + b"!", headers=headers)
    assert mismatched.status_code == 422 and mismatched.json()["rule"] == "photo.hash-mismatch"
    not_image = b"just some text, not a photo"
    refused = mw.client.put(f"/mobile/v1/photos/{sha256(not_image)}", content=not_image, headers=headers)
    assert refused.status_code == 422 and refused.json()["rule"] == "photo.not-an-image"
    status = mw.client.get(f"/mobile/v1/photos/{digest}/status", headers=headers).json()
    assert status == {"sha256": digest, "received": 0, "total": None, "complete": False, "media_type": None}


def test_photo_uploads_resume_where_they_broke_off(mw: MobileWorld) -> None:
    headers = mw.headers()
    digest = sha256(JPEG)
    first = mw.client.put(
        f"/mobile/v1/photos/{digest}",
        content=JPEG[:5000],
        headers={**headers, "Content-Range": f"bytes 0-4999/{len(JPEG)}"},
    )
    assert first.status_code == 202 and first.json()["received"] == 5000
    wrong = mw.client.put(
        f"/mobile/v1/photos/{digest}",
        content=JPEG[6000:],
        headers={**headers, "Content-Range": f"bytes 6000-{len(JPEG) - 1}/{len(JPEG)}"},
    )
    assert wrong.status_code == 409 and wrong.json()["received"] == 5000
    received = mw.client.get(f"/mobile/v1/photos/{digest}/status", headers=headers).json()["received"]
    rest = mw.client.put(
        f"/mobile/v1/photos/{digest}",
        content=JPEG[received:],
        headers={**headers, "Content-Range": f"bytes {received}-{len(JPEG) - 1}/{len(JPEG)}"},
    )
    assert rest.status_code == 200 and rest.json()["complete"] is True
    got = mw.client.get(f"/mobile/v1/photos/{digest}", headers=headers)
    assert got.content == JPEG and got.headers["content-type"] == "image/jpeg"
    assert mw.client.get(f"/mobile/v1/photos/{digest}", headers=mw.headers("outsider")).status_code == 404


def test_the_openapi_document_describes_the_mobile_endpoints_with_examples(mw: MobileWorld) -> None:
    doc = mw.client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/mobile/v1/auth/sign-in", "/mobile/v1/sync", "/mobile/v1/harvests", "/mobile/v1/reference"):
        assert path in paths
    assert doc["components"]["schemas"]["HarvestRecord"]["examples"]
    assert "MobileAccessToken" in doc["components"]["securitySchemes"]


# -- pure rules -------------------------------------------------------------------------------------------


def test_notoginseng_needs_a_three_year_old_planting() -> None:
    # The minimum comes from the catalog data (herb rules); None: the herb has none.
    [young] = planting_age_findings("notoginseng", date(2024, 3, 1), date(2026, 11, 1), 3)
    assert young.rule == "harvest.planting-too-young" and young.hard and "2027-03-01" in young.message_en
    assert planting_age_findings("notoginseng", date(2023, 3, 1), date(2026, 3, 1), 3) == []
    assert planting_age_findings("notoginseng", date(2024, 2, 29), date(2027, 2, 28), 3) == []
    assert planting_age_findings("prunella", date(2025, 9, 25), date(2026, 6, 12), None) == []


def test_distance_to_a_plot_is_zero_inside_and_metres_outside() -> None:
    ring = [[114.0, 32.8], [114.004, 32.8], [114.004, 32.804], [114.0, 32.804], [114.0, 32.8]]
    polygon = parse_geometry({"type": "Polygon", "coordinates": [ring]}, "g").polygons[0]
    assert distance_to_polygon_m((114.002, 32.802), polygon) == 0.0
    # 0.001 degree of latitude is about 111 m.
    assert 110 < distance_to_polygon_m((114.002, 32.799), polygon) < 112
