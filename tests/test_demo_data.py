"""The demo data: one complete chain per herb through the use cases, three violations the rules catch, signed
labels, sensor devices, an auditable ledger, and a second seeding that writes nothing."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from ledger.audit import audit
from ledger.note import Ed25519Signer
from services.context import Context, build_context
from services.demo_data import DemoResult, demo_uscc, seed_demo
from services.labels.rules import LabelError, verify_label
from services.lots import service as lots
from services.lots.models import LotEvent
from services.registry import service as registry
from services.registry.models import Device, Organisation, Plot, Principal
from services.registry.rules import uscc_problem
from services.sensors.service import roster_devices
from services.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = build_context(settings)
    try:
        yield context
    finally:
        context.stop()


@pytest.fixture
def demo(ctx: Context) -> DemoResult:
    return seed_demo(ctx, now=NOW)


def _principal(ctx: Context, token: str | None) -> Principal:
    assert token is not None
    with Session(ctx.engine) as s:
        return registry.authenticate(s, token)


def test_each_herb_has_a_chain_from_seed_lot_and_plot_to_the_buyers_receipt(
    ctx: Context, demo: DemoResult
) -> None:
    admin = _principal(ctx, demo.admin_api_key)
    with Session(ctx.engine) as s:
        buyer_id = s.execute(
            select(Organisation.id).where(Organisation.uscc == demo.orgs["buyer"])
        ).scalar_one()
        assert {c.herb for c in demo.chains} == {"prunella", "epimedium", "notoginseng"}
        for chain in demo.chains:
            for piece in chain.piece_lots:
                trace = lots.trace_lot(s, admin, piece, direction="both")
                assert trace.seed_lots == [chain.seed_lot]
                assert [(p.code, p.daodi) for p in trace.plots] == [(chain.plot, True)]
                assert {chain.fresh_lot, chain.dried_lot} <= {lot.code for lot in trace.ancestors}
                [to_buyer] = [c for c in trace.consignees if c.lot == piece]
                assert to_buyer.org_id == buyer_id and to_buyer.received_at is not None
                lot = lots.get_lot(s, admin, piece)
                assert lot.holder_org_id == buyer_id and lot.released and lot.qc_status == "passed"
                assert lot.form.startswith(chain.herb) and lot.daodi is True
                assert len(trace.units) > 0
    steps = {chain.herb: _event_types(ctx, chain.plot) for chain in demo.chains}
    assert {"sowing", "fertilising", "irrigation", "pesticide"} <= steps["prunella"]
    assert {"transplanting", "fertilising", "irrigation", "pesticide"} <= steps["epimedium"]
    assert {"transplanting", "shading", "fertilising", "irrigation", "pesticide"} <= steps["notoginseng"]


def _event_types(ctx: Context, plot_code: str) -> set[str]:
    """The field operations recorded on a plot."""
    with Session(ctx.engine) as s:
        plot_id = s.execute(select(Plot.id).where(Plot.code == plot_code)).scalar_one()
        events = s.exec(
            select(LotEvent).where(LotEvent.type == "field-operation", LotEvent.plot_id == plot_id)
        ).all()
        return {e.details["operation"] for e in events}


def test_notoginseng_grows_three_years_and_harvests_keep_their_seasons(
    ctx: Context, demo: DemoResult
) -> None:
    admin = _principal(ctx, demo.admin_api_key)
    chains = {c.herb: c for c in demo.chains}
    with Session(ctx.engine) as s:
        seedling = lots.get_lot(s, admin, chains["notoginseng"].seed_lot)
        fresh = lots.get_lot(s, admin, chains["notoginseng"].fresh_lot)
        assert fresh.created_at.year - seedling.created_at.year == 3
        for chain in demo.chains:
            findings = lots.lot_findings(s, admin, chain.fresh_lot)
            assert findings == []  # in season, GPS inside the plot, inside the daodi region
    assert chains["prunella"].harvested_on.month in (5, 6)
    assert chains["epimedium"].harvested_on.month in (6, 7, 8, 9)
    assert chains["notoginseng"].harvested_on.month in (8, 9, 10, 11, 12, 1)


def test_the_three_violations_are_caught_by_the_rules(ctx: Context, demo: DemoResult) -> None:
    admin = _principal(ctx, demo.admin_api_key)
    by_kind = {v.kind: v for v in demo.violations}
    rejected = {(r.step, r.lot): r.rule for r in demo.rejections}
    # (a) the harvest inside the PHI was rejected; the plot was harvested later, legally.
    phi = by_kind["phi-breach"]
    assert rejected[("harvest", phi.lot)] == "phi.too-early"
    with Session(ctx.engine) as s:
        assert lots.get_lot(s, admin, phi.lot).daodi is True
        # (b) a lot from outside the daodi region carries the origin finding and daodi=false.
        outside = by_kind["outside-daodi"]
        rules = [f.rule for f in lots.lot_findings(s, admin, outside.lot)]
        assert rules == ["origin.outside-daodi-region"]
        assert lots.get_lot(s, admin, outside.lot).daodi is False
        # (c) the failed assay is recorded and blocks the release.
        failed = by_kind["failed-assay"]
        lot = lots.get_lot(s, admin, failed.lot)
        assert lot.qc_status == "failed" and not lot.released
        assert {f.rule for f in lots.lot_findings(s, admin, failed.lot)} == {"qc.above-max", "qc.below-min"}
    assert rejected[("release", failed.lot)] == "release.qc-not-passed"


def test_every_decoction_piece_lot_has_a_label_that_verifies(ctx: Context, demo: DemoResult) -> None:
    keys = {k: signer.public_key() for k, signer in ctx.keys.labels.items()}
    pieces = [lot for chain in demo.chains for lot in chain.piece_lots]
    assert set(pieces) <= set(demo.label_uris)
    harvested = {lot: chain.harvested_on for chain in demo.chains for lot in chain.piece_lots}
    for lot, uri in demo.label_uris.items():
        assert uri.startswith("http://testserver/01/")
        label = verify_label(uri, keys)
        assert label.lot == lot
        if lot in harvested:
            assert label.attribute("7007") == harvested[lot].strftime("%y%m%d")
    with pytest.raises(LabelError):
        verify_label(demo.label_uris[pieces[0]].replace("/10/", "/10/X"), keys)


def test_the_ledger_audits_after_seeding(ctx: Context, demo: DemoResult) -> None:
    ctx.checkpointer.sign()
    report = audit(ctx.log.store, [ctx.keys.log_verifier])
    assert report.size == ctx.log.size() > 80 and report.checkpoints >= 1


def test_seeding_twice_writes_nothing_the_second_time(ctx: Context, demo: DemoResult) -> None:
    size = ctx.log.size()
    with Session(ctx.engine) as s:
        events = s.execute(select(func.count()).select_from(LotEvent)).scalar_one()
    again = seed_demo(ctx, now=datetime(2027, 3, 1, tzinfo=UTC))
    assert ctx.log.size() == size
    with Session(ctx.engine) as s:
        assert s.execute(select(func.count()).select_from(LotEvent)).scalar_one() == events
    assert demo.created and not again.created
    assert again.label_uris == demo.label_uris and again.lots == demo.lots
    assert again.admin_api_key == demo.admin_api_key and again.accounts == demo.accounts
    assert again.rejections == demo.rejections and again.devices == demo.devices


def test_api_keys_act_in_their_roles_and_organisations_are_valid(ctx: Context, demo: DemoResult) -> None:
    assert set(demo.api_keys) == {"grower", "processor", "lab", "buyer", "regulator"}
    for role, key in demo.api_keys.items():
        assert role in _principal(ctx, key).roles
    assert "admin" in _principal(ctx, demo.admin_api_key).roles
    assert all(uscc_problem(uscc) is None for uscc in demo.orgs.values())
    secrets = ctx.settings.key_dir / "demo.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600


def test_sensor_devices_are_registered_with_their_keys_and_rostered(ctx: Context, demo: DemoResult) -> None:
    signed_by = sorted(d.signed_by for d in demo.devices)
    assert signed_by.count("gateway") == 1 and signed_by.count("device") >= 2
    with Session(ctx.engine) as s:
        for device in demo.devices:
            row = s.get(Device, device.device)
            assert row is not None and row.signed_by == device.signed_by and row.public_key == device.vkey
            if device.signed_by == "device":
                assert device.key_file is not None
                path = ctx.settings.key_dir / "demo-devices" / f"{device.device}.ed25519"
                assert str(path) == device.key_file and stat.S_IMODE(path.stat().st_mode) == 0o600
                signer = Ed25519Signer.from_private_bytes(device.device, base64.b64decode(path.read_text()))
                assert signer.verifier_key() == device.vkey
    roster = roster_devices(json.loads(demo.roster.read_text()))
    assert {(d.device, d.org, d.plot, d.signed_by) for d in roster} == {
        (d.device, d.org, d.plot, d.signed_by) for d in demo.devices
    }


def test_a_platform_bootstrapped_before_gets_the_demo_through_its_admin(ctx: Context) -> None:
    with Session(ctx.engine) as s:
        registry.bootstrap_admin(
            s, uscc=demo_uscc("91", "410100", "MA4XX0001"), org_name="Operator", user_name="Admin", now=NOW
        )
        s.commit()
    result = seed_demo(ctx, now=NOW)
    assert "admin" in _principal(ctx, result.admin_api_key).roles
    with Session(ctx.engine) as s:
        operator = s.execute(
            select(Organisation).where(Organisation.uscc == result.orgs["operator"])
        ).scalar_one()
        assert operator.kind == "operator" and operator.ledger_index is not None
    assert {r.rule for r in result.rejections} == {"phi.too-early", "release.qc-not-passed"}
