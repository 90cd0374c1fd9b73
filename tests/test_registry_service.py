"""Registry use cases on a fresh SQLite file: orgs, users, keys, bases, plots, pesticides, devices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from ledger.entry import parse_entry
from ledger.log import Log
from ledger.note import Ed25519Signer
from services.db import ledger_store, make_engine
from services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from services.migrate import upgrade
from services.registry import service
from services.registry.models import (
    BaseIn,
    DeviceIn,
    OrgIn,
    PesticideIn,
    Plot,
    PlotIn,
    Principal,
    UserIn,
)
from services.settings import Settings

NOW = datetime(2026, 6, 12, 8, 0, tzinfo=UTC)
OPERATOR = "91350100M000100Y43"
COOP = "91440300708461136T"
OTHER = "91110000802100433B"


def square(lon: float, lat: float, size: float = 0.002) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


class World:
    """A migrated database with an operator admin, a cooperative with a grower, and another organisation."""

    def __init__(self, session: Session, log: Log) -> None:
        self.session, self.log = session, log
        _, _, token = service.bootstrap_admin(
            session, uscc=OPERATOR, org_name="Operator", user_name="Admin", now=NOW
        )
        self.admin = service.authenticate(session, token)
        self.coop = service.register_org(
            session, log, self.admin, OrgIn(uscc=COOP, name="Coop", kind="cooperative"), now=NOW
        )
        self.other = service.register_org(
            session, log, self.admin, OrgIn(uscc=OTHER, name="Other", kind="cooperative"), now=NOW
        )
        grower = service.create_user(
            session, self.admin, UserIn(org_id=self.coop.id, name="Li", roles=["grower"]), now=NOW
        )
        self.grower_key = grower.api_key
        self.grower = service.authenticate(session, grower.api_key)
        outsider = service.create_user(
            session, self.admin, UserIn(org_id=self.other.id, name="Wang", roles=["grower"]), now=NOW
        )
        self.outsider = service.authenticate(session, outsider.api_key)
        self.base = service.create_base(
            session,
            log,
            self.grower,
            BaseIn(code="QS-1", name="Queshan base", kind="production", admin_code="411725"),
            now=NOW,
        )
        session.commit()

    def plot(self, code: str, geometry: dict[str, Any], who: Principal | None = None) -> Any:
        data = PlotIn(base_id=self.base.id, code=code, name=code, admin_code="411725", geometry=geometry)
        return service.register_plot(self.session, self.log, who or self.grower, data, now=NOW)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    upgrade(settings, now=NOW)
    engine = make_engine(settings.database_url)
    log = Log(ledger_store(settings.database_url))
    with Session(engine) as session:
        yield World(session, log)
    log.store.close()  # type: ignore[attr-defined]
    engine.dispose()


def count(session: Session, model: Any) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_an_api_key_resolves_to_its_user_organisation_and_roles(world: World) -> None:
    assert world.grower.org_id == world.coop.id and world.grower.roles == {"grower"}
    with pytest.raises(AuthenticationError):
        service.authenticate(world.session, "dt_not-a-key")
    with pytest.raises(AuthenticationError):
        service.authenticate(world.session, None)


def test_api_keys_are_stored_only_as_their_hash(world: World) -> None:
    from services.registry.models import ApiKey

    stored = [k.token_sha256 for k in world.session.execute(select(ApiKey)).scalars()]
    assert world.grower_key not in stored and service.hash_token(world.grower_key) in stored


def test_bootstrapping_twice_is_refused(world: World) -> None:
    with pytest.raises(ConflictError):
        service.bootstrap_admin(world.session, uscc=OTHER, org_name="x", user_name="y", now=NOW)


def test_an_organisation_with_a_bad_check_character_is_refused(world: World) -> None:
    with pytest.raises(InvalidInputError) as caught:
        service.register_org(
            world.session,
            world.log,
            world.admin,
            OrgIn(uscc="91440300708461136X", name="x", kind="lab"),
            now=NOW,
        )
    assert caught.value.field == "uscc" and caught.value.extra["rule"] == "uscc.check"


def test_a_duplicate_organisation_is_a_conflict(world: World) -> None:
    with pytest.raises(ConflictError) as caught:
        service.register_org(
            world.session, world.log, world.admin, OrgIn(uscc=COOP.lower(), name="x", kind="lab"), now=NOW
        )
    assert caught.value.field == "uscc"


def test_only_an_admin_registers_organisations_and_users(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        service.register_org(
            world.session,
            world.log,
            world.grower,
            OrgIn(uscc="91110000802100433B", name="x", kind="lab"),
            now=NOW,
        )
    with pytest.raises(PermissionDeniedError):
        service.create_user(
            world.session, world.grower, UserIn(org_id=world.coop.id, name="x", roles=["admin"]), now=NOW
        )


def test_registering_an_organisation_appends_a_ledger_entry(world: World) -> None:
    assert world.coop.ledger_index is not None
    entry = parse_entry(world.log.entry(world.coop.ledger_index))
    assert entry.kind == "registry.org" and entry.body["org"] == COOP


def test_a_plot_in_queshan_lies_in_the_prunella_region_with_its_area_in_mu(world: World) -> None:
    plot = world.plot("P1", square(114.0, 32.8, 0.001))
    world.session.commit()  # the ledger is read through its own connection
    assert plot.area_mu == pytest.approx(15.58, abs=0.01)
    assert [(m.code, m.herbs, m.contained) for m in plot.regions] == [("queshan-gi", ["prunella"], True)]
    assert plot.org_id == world.coop.id
    entry = parse_entry(world.log.entry(plot.ledger_index))
    assert entry.kind == "registry.plot" and entry.actor == f"user:{world.grower.user_id}"


def test_a_plot_outside_every_daodi_region_has_no_region(world: World) -> None:
    plot = world.plot("P2", square(113.0, 34.7))  # Zhengzhou, far from the three regions
    assert plot.regions == []


def test_an_invalid_polygon_is_refused_and_nothing_is_written(world: World) -> None:
    size = world.log.size()
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[114.0, 32.8], [114.002, 32.801], [114.002, 32.8], [114.0, 32.802], [114.0, 32.8]]],
    }
    with pytest.raises(InvalidInputError) as caught:
        world.plot("P3", bowtie)
    world.session.rollback()
    assert (
        caught.value.field == "geometry.coordinates"
        and caught.value.extra["rule"] == "geometry.self-intersection"
    )
    assert count(world.session, Plot) == 0 and world.log.size() == size


def test_writing_a_plot_into_another_organisations_base_is_forbidden(world: World) -> None:
    size = world.log.size()
    with pytest.raises(PermissionDeniedError) as caught:
        world.plot("P4", square(114.0, 32.8), who=world.outsider)
    world.session.rollback()
    assert caught.value.field == "base_id" and caught.value.extra["rule"] == "access.organisation"
    assert count(world.session, Plot) == 0 and world.log.size() == size


def test_an_unknown_base_is_named(world: World) -> None:
    data = PlotIn(base_id=999, code="P5", name="x", admin_code="411725", geometry=square(114.0, 32.8))
    with pytest.raises(InvalidInputError) as caught:
        service.register_plot(world.session, world.log, world.grower, data, now=NOW)
    assert caught.value.field == "base_id"


def test_a_duplicate_plot_code_in_one_organisation_is_a_conflict(world: World) -> None:
    world.plot("P6", square(114.0, 32.8))
    with pytest.raises(ConflictError) as caught:
        world.plot("P6", square(114.01, 32.8))
    assert caught.value.field == "code"


def test_a_bad_administrative_code_is_refused(world: World) -> None:
    data = PlotIn(
        base_id=world.base.id, code="P7", name="x", admin_code="41172", geometry=square(114.0, 32.8)
    )
    with pytest.raises(InvalidInputError) as caught:
        service.register_plot(world.session, world.log, world.grower, data, now=NOW)
    assert caught.value.field == "admin_code"


def test_a_grower_creating_a_base_for_another_organisation_is_forbidden(world: World) -> None:
    data = BaseIn(org_id=world.other.id, code="X", name="x", kind="production", admin_code="411725")
    with pytest.raises(PermissionDeniedError) as caught:
        service.create_base(world.session, world.log, world.grower, data, now=NOW)
    assert caught.value.field == "org_id"


def test_listings_are_scoped_to_the_callers_organisation(world: World) -> None:
    world.plot("P8", square(114.0, 32.8))
    assert service.list_plots(world.session, world.grower, base_id=None, limit=10, offset=0)[1] == 1
    assert service.list_plots(world.session, world.outsider, base_id=None, limit=10, offset=0)[1] == 0
    assert service.list_plots(world.session, world.admin, base_id=None, limit=10, offset=0)[1] == 1
    with pytest.raises(NotFoundError):
        service.get_base(world.session, world.outsider, world.base.id)


def test_the_banned_growth_regulators_are_seeded_as_banned(world: World) -> None:
    banned, _ = service.list_pesticides(world.session, banned=True, limit=50, offset=0)
    assert {"壮根灵", "膨大素"} <= {p.name_zh for p in banned}
    allowed, _ = service.list_pesticides(world.session, banned=False, limit=50, offset=0)
    assert all(p.registration_no and p.registration_no.startswith("PD") for p in allowed)


def test_a_pesticide_needs_a_registration_number_and_known_herbs(world: World) -> None:
    quality = Principal(user_id=world.admin.user_id, org_id=world.admin.org_id, roles=frozenset({"quality"}))
    base = {"name_zh": "测试药", "name_en": "Test", "active_ingredient": "x", "kind": "fungicide"}
    with pytest.raises(InvalidInputError) as caught:
        service.add_pesticide(world.session, quality, PesticideIn(**base))
    assert caught.value.field == "registration_no"
    with pytest.raises(InvalidInputError) as caught:
        service.add_pesticide(
            world.session, quality, PesticideIn(**base, registration_no="PD20990001", phi_days={"ginseng": 7})
        )
    assert caught.value.field == "phi_days.ginseng" and caught.value.extra["rule"] == "catalog.unknown-herb"
    added = service.add_pesticide(
        world.session, quality, PesticideIn(**base, registration_no="PD20990001", phi_days={"notoginseng": 7})
    )
    assert added.phi_days == {"notoginseng": 7}
    with pytest.raises(PermissionDeniedError):
        service.add_pesticide(world.session, world.grower, PesticideIn(**base, registration_no="PD20990002"))


def test_a_signing_device_is_registered_with_its_verifier_key(world: World) -> None:
    plot = world.plot("P9", square(114.0, 32.8))
    vkey = Ed25519Signer.generate("d-0042").verifier_key()
    device = service.register_device(
        world.session,
        world.log,
        world.grower,
        DeviceIn(id="d-0042", plot_id=plot.id, public_key=vkey),
        now=NOW,
    )
    assert device.org_id == world.coop.id and device.signed_by == "device"
    world.session.commit()
    assert device.ledger_index is not None
    assert parse_entry(world.log.entry(device.ledger_index)).kind == "registry.device"
    with pytest.raises(ConflictError):
        service.register_device(
            world.session, world.log, world.grower, DeviceIn(id="d-0042", public_key=vkey), now=NOW
        )


def test_a_device_that_signs_needs_a_valid_key(world: World) -> None:
    with pytest.raises(InvalidInputError) as caught:
        service.register_device(world.session, world.log, world.grower, DeviceIn(id="d-1"), now=NOW)
    assert caught.value.field == "public_key"
    with pytest.raises(InvalidInputError) as caught:
        service.register_device(
            world.session, world.log, world.grower, DeviceIn(id="d-1", public_key="nonsense"), now=NOW
        )
    assert caught.value.extra["rule"] == "device.key-format"
    gateway_signed = service.register_device(
        world.session, world.log, world.grower, DeviceIn(id="d-2", signed_by="gateway"), now=NOW
    )
    assert gateway_signed.public_key is None


def test_a_device_on_another_organisations_plot_is_refused(world: World) -> None:
    plot = world.plot("P10", square(114.0, 32.8))
    with pytest.raises(InvalidInputError) as caught:
        service.register_device(
            world.session,
            world.log,
            world.outsider,
            DeviceIn(id="d-3", plot_id=plot.id, signed_by="gateway"),
            now=NOW,
        )
    assert caught.value.field == "plot_id"


def test_origin_findings_judge_a_plot_against_the_herbs_daodi_region(world: World) -> None:
    queshan = world.plot("P11", square(114.0, 32.8))
    assert service.origin_findings(world.session, queshan.id, "prunella") == []
    [finding] = service.origin_findings(world.session, queshan.id, "notoginseng")
    assert (finding.rule, finding.severity) == ("origin.outside-daodi-region", "hard")
    assert "532600" in finding.message_en
