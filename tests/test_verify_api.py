"""The public resolver and the buyers' API: verdicts for a good and a violating lot, content negotiation,
EPCIS and linkset link types, fallbacks, 404/410, bad input as problems, and the offline proof bundle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator
from lots_world import World, at
from sqlmodel import Session

from ledger.note import Ed25519Signer
from services.app import create_app
from services.labels.models import Label
from services.labels.rules import label_path, sign_label
from services.lots import service as lots
from services.lots.models import HarvestIn, ProcessingIn, QcIn
from services.settings import Settings
from services.verify.rules import BundleError, verify_bundle

GOOD = "QS26P0007"
BAD = "QS26P0099"
PIECE_GTIN_FORM = "prunella.prunella-piece"
QC_OK = {
    "moisture": 11.2,
    "total_ash": 9.1,
    "acid_insoluble_ash": 2.0,
    "extractive_water": 12.5,
    "rosmarinic_acid": 0.31,
    "so2": 20.0,
}


def _process(world: World, source: str, out: str, kg: str, when: str) -> None:
    world.run(
        lots.process,
        world.admin,
        ProcessingIn.model_validate(
            {
                "inputs": [{"lot": source, "quantity_kg": kg}],
                "output": {"lot_code": out, "form": PIECE_GTIN_FORM, "quantity_kg": str(Decimal(kg) - 20)},
                "event_time": when,
            }
        ),
    )


def _qc(world: World, lot: str, results: dict[str, float]) -> None:
    world.run(
        lots.record_qc,
        world.admin,
        QcIn.model_validate(
            {
                "lot": lot,
                "lab": "lab",
                "method": "ChP 2020",
                "results": results,
                "event_time": "2026-07-01T15:00:00+08:00",
            }
        ),
    )


def build_lots(world: World) -> None:
    """A demo-like good chain (seed -> fresh -> dried -> piece, QC passed) and a violating one grown outside
    the Queshan GI region whose QC fails."""
    world.fresh_lot()
    world.dry()
    _process(world, "QS26D0007", GOOD, "420", "2026-06-25T10:00:00+08:00")
    _qc(world, GOOD, QC_OK)
    world.seed_lot("QS-S-2025-02")
    world.planting("QS-S-2025-02", plot_id=world.outside_plot_id)
    world.run(
        lots.harvest,
        world.grower,
        HarvestIn(
            plot_id=world.outside_plot_id,
            lot_code="QS26H0099",
            quantity_kg=Decimal("1200"),
            event_time=at("2026-06-12T08:00:00"),
        ),
    )
    world.dry("QS26H0099", "QS26D0099")
    _process(world, "QS26D0099", BAD, "420", "2026-06-25T11:00:00+08:00")
    _qc(world, BAD, {**QC_OK, "moisture": 16.0})


def piece_gtin(world: World) -> str:
    from services.catalog.models import Form

    with Session(world.engine) as s:
        form = s.get(Form, PIECE_GTIN_FORM)
        assert form is not None
        return form.gtin


def lot_uri(settings: Settings, gtin: str, lot: str) -> str:
    from services.keys import KeyRing

    keys = KeyRing.load(settings.key_dir, settings.log_origin)
    signer = keys.label_signer
    return sign_label(
        settings.public_base_url, label_path(gtin, lot), [("7007", "260625")], signer.key_id, signer.key
    )


@pytest.fixture
def world(settings: Settings) -> World:
    w = World(settings)
    build_lots(w)
    return w


@pytest.fixture
def client(settings: Settings, world: World) -> Iterator[TestClient]:
    app = create_app(settings)
    app.state.ctx.checkpointer.sign()
    with TestClient(app) as test_client:
        yield test_client


def _path(uri: str) -> str:
    return uri.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_good_lot_verdict_passes_every_check(client: TestClient, settings: Settings, world: World) -> None:
    uri = lot_uri(settings, piece_gtin(world), GOOD)
    r = client.get(_path(uri), headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    verdict = r.json()
    checks = {c["name"]: c["status"] for c in verdict["checks"]}
    assert checks["signature"] == "pass"
    assert checks["origin"] == "pass"
    assert checks["lineage"] == "pass"
    assert checks["qc"] == "pass"
    assert checks["ledger"] == "pass"
    assert verdict["status"] in ("pass", "warn")
    assert verdict["ledger"]["verified"] == verdict["ledger"]["total"] > 3
    assert verdict["timeline"][0]["type"] == "seed-lot"
    assert verdict["scans"]["count"] == 1


def test_lot_grown_outside_the_gi_region_fails_in_plain_words(
    client: TestClient, settings: Settings, world: World
) -> None:
    uri = lot_uri(settings, piece_gtin(world), BAD)
    verdict = client.get(_path(uri), headers={"Accept": "application/json"}).json()
    assert verdict["status"] == "fail"
    origin = next(c for c in verdict["checks"] if c["name"] == "origin")
    assert origin["status"] == "fail"
    assert "产地不在确山夏枯草地理标志产品保护范围内" in origin["message_zh"]
    assert next(c for c in verdict["checks"] if c["name"] == "qc")["status"] == "fail"
    html = client.get(_path(uri)).text
    assert "产地不在确山夏枯草地理标志产品保护范围内" in html


def test_an_altered_link_fails_the_signature(client: TestClient, settings: Settings, world: World) -> None:
    uri = lot_uri(settings, piece_gtin(world), GOOD).replace("7007=260625", "7007=260626")
    verdict = client.get(_path(uri), headers={"Accept": "application/json"}).json()
    assert next(c for c in verdict["checks"] if c["name"] == "signature")["status"] == "fail"
    assert verdict["status"] == "fail"


def test_html_is_the_default_and_self_contained(client: TestClient, settings: Settings, world: World) -> None:
    r = client.get(_path(lot_uri(settings, piece_gtin(world), GOOD)))
    assert r.headers["content-type"].startswith("text/html")
    assert '<html lang="zh">' in r.text and "<svg" in r.text
    assert "http://" not in r.text.replace("http://testserver", "") and "https://" not in r.text


def test_epcis_link_type_validates_against_the_schema(
    client: TestClient, settings: Settings, world: World, standards: Path
) -> None:
    schema = json.loads((standards / "epcis" / "EPCIS-JSON-Schema.json").read_text())
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    r = client.get(f"/01/{piece_gtin(world)}/10/{GOOD}", params={"linkType": "gs1:epcis"})
    assert r.status_code == 200
    doc = r.json()
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)] == []
    assert doc["epcisBody"]["eventList"]


def test_linkset(client: TestClient, world: World) -> None:
    r = client.get(f"/01/{piece_gtin(world)}/10/{GOOD}", params={"linkType": "linkset"})
    assert r.headers["content-type"].startswith("application/linkset+json")
    links = r.json()["linkset"][0]
    assert "https://gs1.org/voc/epcis" in links and links["anchor"].endswith(f"/10/{GOOD}")


def _unit_label(settings: Settings, world: World, status: str, lot: str | None) -> str:
    from datetime import UTC, datetime

    gtin = piece_gtin(world)
    uri = sign_label(
        settings.public_base_url,
        label_path(gtin, serial="7KQ2M9XW4T"),
        [],
        "1",
        __import__("services.keys", fromlist=["KeyRing"])
        .KeyRing.load(settings.key_dir, settings.log_origin)
        .label_signer.key,
    )
    with Session(world.engine) as s:
        s.add(
            Label(
                gtin=gtin,
                serial="7KQ2M9XW4T",
                form_id=PIECE_GTIN_FORM,
                org_id=world.factory_id,
                kind="carton",
                key_id="1",
                uri=uri,
                status=status,
                lot_code=lot,
                issued_at=datetime.now(UTC),
            )
        )
        s.commit()
    return uri


def test_activated_unit_label_resolves_to_its_lot(
    client: TestClient, settings: Settings, world: World
) -> None:
    uri = _unit_label(settings, world, "activated", GOOD)
    verdict = client.get(_path(uri), headers={"Accept": "application/json"}).json()
    assert verdict["level"] == "unit" and verdict["lot"] == GOOD


def test_pre_issued_label_not_yet_activated_says_so(
    client: TestClient, settings: Settings, world: World
) -> None:
    uri = _unit_label(settings, world, "issued", None)
    r = client.get(_path(uri))
    assert r.status_code == 200
    assert "尚未激活" in r.text


def test_voided_label_is_gone(client: TestClient, settings: Settings, world: World) -> None:
    uri = _unit_label(settings, world, "voided", GOOD)
    r = client.get(_path(uri))
    assert r.status_code == 410
    assert r.headers["content-type"].startswith("application/problem+json")


def test_unknown_unit_falls_back_to_lot_then_product(client: TestClient, world: World) -> None:
    gtin = piece_gtin(world)
    unit = client.get(f"/01/{gtin}/10/{GOOD}/21/NOPE", headers={"Accept": "application/json"}).json()
    assert unit["level"] == "lot" and unit["lot"] == GOOD
    product = client.get(f"/01/{gtin}/10/NOPE", headers={"Accept": "application/json"}).json()
    assert product["level"] == "product"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/01/06901234000019/10/X", 422),  # bad check digit
        ("/01/00000000000000/10/X", 404),  # unknown product
        ("/01/123/10/X", 400),
        ("/01/{gtin}/10/" + "A" * 21, 400),
        ("/01/{gtin}/10/QS26P0007?linkType=nonsense", 422),
        ("/01/{gtin}/10/QS26P0007?7007=2606", 400),
        ("/01/{gtin}/10/QS26P0007?k=1", 422),
        ("/01/{gtin}/10/QS26P0007?k=1&s=short", 400),
        ("/api/v1/verify/NOPE", 404),
        ("/api/v1/verify/NOPE/bundle", 404),
    ],
)
def test_bad_paths_and_parameters_are_problems(
    client: TestClient, world: World, path: str, status: int
) -> None:
    r = client.get(path.replace("{gtin}", piece_gtin(world)))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_bundle_verifies_offline_and_tampering_is_caught(client: TestClient, world: World) -> None:
    bundle: dict[str, Any] = client.get(f"/api/v1/verify/{GOOD}/bundle").json()
    keys = client.get("/api/v1/keys").json()
    verdict = verify_bundle(json.loads(json.dumps(bundle)), keys)
    assert verdict.entries == len(bundle["events"]) > 3
    tampered = json.loads(json.dumps(bundle))
    proof = tampered["events"][0]["tlog_proof"]
    lines = proof.split("\n")
    lines[3] = lines[4]  # swap an audit-path hash
    tampered["events"][0]["tlog_proof"] = "\n".join(lines)
    with pytest.raises(BundleError):
        verify_bundle(tampered, keys)
    with pytest.raises(BundleError):
        verify_bundle(
            bundle, {**keys, "witnesses": [Ed25519Signer.generate("witness.example").verifier_key()]}
        )


def test_json_verdict_api(client: TestClient) -> None:
    verdict = client.get(f"/api/v1/verify/{GOOD}").json()
    assert verdict["lot"] == GOOD and verdict["status"] in ("pass", "warn")
    assert verdict["scans"]["count"] == 0


def test_repeated_scans_are_counted_across_flushes(
    client: TestClient, settings: Settings, world: World
) -> None:
    import dataclasses

    path = _path(lot_uri(settings, piece_gtin(world), GOOD))
    client.get(path)
    state = client.app.state.verify  # type: ignore[attr-defined]
    state.thresholds = dataclasses.replace(state.thresholds, flush_seconds=0)
    counts = [
        client.get(path, headers={"Accept": "application/json"}).json()["scans"]["count"] for _ in range(3)
    ]
    assert counts == [2, 3, 4]
    assert client.get(path).status_code == 200


def test_cli_verifies_label_and_bundle_offline(
    client: TestClient, settings: Settings, world: World, tmp_path: Path
) -> None:
    from services.verify.cli import verify_label_bundle

    keys = tmp_path / "keys.json"
    keys.write_text(client.get("/api/v1/keys").text)
    bundle = tmp_path / "bundle.json"
    bundle.write_text(client.get(f"/api/v1/verify/{GOOD}/bundle").text)
    uri = lot_uri(settings, piece_gtin(world), GOOD)
    ok = verify_label_bundle(uri, keys_file=str(keys), bundle_file=str(bundle))
    assert ok["ok"] is True and ok["events_proven"] > 3
    bad = verify_label_bundle(
        uri.replace("7007=260625", "7007=260626"), keys_file=str(keys), bundle_file=str(bundle)
    )
    assert bad["ok"] is False and "signature" in bad["reason"]
