"""Bad input to the lot use cases: a clear error naming the field and the rule, and nothing half-written."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from lots_world import World, at

from services.errors import (
    ConflictError,
    DomainError,
    InvalidInputError,
    PermissionDeniedError,
    RuleViolation,
)
from services.lots import service as lots
from services.lots.models import (
    FieldOperationIn,
    HarvestIn,
    MergeIn,
    PlantingIn,
    PrimaryProcessingIn,
    ReceivingIn,
    SeedLotIn,
    ShippingIn,
    SplitIn,
)
from services.settings import Settings


@pytest.fixture
def world(settings: Settings) -> World:
    w = World(settings)
    w.fresh_lot()
    return w


def seed(world: World, **changes: Any) -> None:
    by = changes.pop("by", world.grower)
    fields: dict[str, Any] = {
        "lot_code": "QS-S-2025-02",
        "form": "prunella.seed",
        "quantity_kg": Decimal("10"),
        "supplier": "Seed base",
        "germination_rate": Decimal("80"),
        "event_time": at("2025-08-21T09:00:00"),
    }
    fields.update(changes)
    world.run(lots.register_seed_lot, by, SeedLotIn(**fields))


def dry(world: World, by: str = "grower", **changes: Any) -> None:
    doc: dict[str, Any] = {
        "inputs": [{"lot": "QS26H0007", "quantity_kg": "1200"}],
        "output": {"lot_code": "QS26D0009", "form": "prunella.dried", "quantity_kg": "420"},
        "steps": [{"step": "sorting"}, {"step": "drying", "method": "sun"}],
        "event_time": "2026-06-20T17:00:00+08:00",
    }
    doc.update(changes)
    world.run(lots.process_primary, getattr(world, by), PrimaryProcessingIn.model_validate(doc))


def cycle(world: World) -> None:
    world.dry()
    world.run(
        lots.split,
        world.grower,
        SplitIn.model_validate(
            {
                "lot": "QS26D0007",
                "outputs": [{"lot_code": "QS26D0007-A", "quantity_kg": "100"}],
                "event_time": "2026-06-21T09:00:00+08:00",
            }
        ),
    )
    world.run(
        lots.merge,
        world.grower,
        MergeIn.model_validate(
            {
                "inputs": [{"lot": "QS26D0007-A", "quantity_kg": "100"}],
                "output": {"lot_code": "QS26D0007", "quantity_kg": "100"},
                "into_existing": True,
                "event_time": "2026-06-22T09:00:00+08:00",
            }
        ),
    )


def phi_breach(world: World) -> None:
    world.pesticide(when="2026-06-05T07:00:00")
    world.harvest(code="QS26H0008", kg="10", when="2026-06-12T09:00:00")


def banned_input(world: World) -> None:
    world.pesticide(when="2026-05-20T07:00:00", product=world.banned)


def field_op_on_other_plot(world: World) -> None:
    world.run(
        lots.record_field_operation,
        world.outsider,
        FieldOperationIn(plot_id=world.plot_id, operation="weeding", event_time=at("2026-05-02T07:00:00")),
    )


def handed_over(world: World) -> None:
    world.run(
        lots.ship,
        world.grower,
        ShippingIn.model_validate(
            {
                "lot": "QS26H0007",
                "consignee_org_id": world.factory_id,
                "delivery_ref": "DN-7",
                "event_time": "2026-06-13T08:00:00+08:00",
            }
        ),
    )
    [incoming], _ = world.read(lots.list_shipments, world.processor, incoming=True, limit=10, offset=0)
    world.run(
        lots.receive,
        world.processor,
        ReceivingIn.model_validate({"shipment_id": incoming.id, "event_time": "2026-06-14T08:00:00+08:00"}),
    )
    dry(world)


def in_transit(world: World) -> None:
    world.run(
        lots.ship,
        world.grower,
        ShippingIn.model_validate(
            {
                "lot": "QS26H0007",
                "consignee_org_id": world.factory_id,
                "delivery_ref": "DN-7",
                "event_time": "2026-06-13T08:00:00+08:00",
            }
        ),
    )
    dry(world)


def harvest_before_planting(world: World) -> None:
    world.harvest(code="QS26H0009", kg="10", when="2025-09-01T08:00:00")


def planting_other_orgs_seed(world: World) -> None:
    world.run(
        lots.plant,
        world.outsider,
        PlantingIn(
            plot_id=world.other_plot_id,
            seed_lot="QS-S-2025-01",
            cycle="2025-2026",
            quantity_kg=Decimal("1"),
            event_time=at("2025-09-26T08:00:00"),
        ),
    )


def future(world: World) -> None:
    world.harvest(code="QS26H0010", kg="10", when="2027-06-12T08:00:00")


def huge_harvest(world: World) -> None:
    world.harvest(code="QS26H0011", kg="9000000")


CASES: list[tuple[str, Callable[[World], None], type[DomainError], str, str | None]] = [
    (
        "unknown form",
        lambda w: seed(w, form="ginseng.seed"),
        InvalidInputError,
        "catalog.unknown-form",
        "form",
    ),
    ("wrong form kind", lambda w: seed(w, form="prunella.dried"), RuleViolation, "lot.form-kind", "form"),
    (
        "negative quantity",
        lambda w: seed(w, quantity_kg=Decimal("-1")),
        RuleViolation,
        "quantity.positive",
        "quantity_kg",
    ),
    (
        "zero quantity",
        lambda w: seed(w, quantity_kg=Decimal("0")),
        RuleViolation,
        "quantity.positive",
        "quantity_kg",
    ),
    (
        "sub-gram quantity",
        lambda w: seed(w, quantity_kg=Decimal("1.0001")),
        RuleViolation,
        "quantity.precision",
        "quantity_kg",
    ),
    (
        "absurd quantity",
        lambda w: seed(w, quantity_kg=Decimal("1e12")),
        RuleViolation,
        "quantity.too-large",
        "quantity_kg",
    ),
    (
        "germination over 100",
        lambda w: seed(w, germination_rate=Decimal("120")),
        RuleViolation,
        "seed-lot.germination-rate",
        "germination_rate",
    ),
    (
        "duplicate lot code",
        lambda w: seed(w, lot_code="QS26H0007"),
        ConflictError,
        "lot.duplicate-code",
        "lot_code",
    ),
    (
        "non-ASCII lot code",
        lambda w: seed(w, lot_code="夏枯草-01"),
        RuleViolation,
        "lot.code-not-ascii",
        "lot_code",
    ),
    (
        "lot code too long",
        lambda w: seed(w, lot_code="QS" + "0" * 19),
        RuleViolation,
        "lot.code-format",
        "lot_code",
    ),
    ("wrong role", lambda w: seed(w, by=w.buyer), PermissionDeniedError, "access.role", None),
    ("future event", future, RuleViolation, "event.in-future", "event_time"),
    ("harvest before planting", harvest_before_planting, RuleViolation, "event.before-inputs", "event_time"),
    (
        "harvest heavier than the plot can bear",
        huge_harvest,
        RuleViolation,
        "harvest.implausible-quantity",
        "quantity_kg",
    ),
    ("PHI breach", phi_breach, RuleViolation, "phi.too-early", "event_time"),
    ("banned input", banned_input, RuleViolation, "inputs.banned", "pesticide_id"),
    (
        "field operation on another organisation's plot",
        field_op_on_other_plot,
        InvalidInputError,
        "registry.unknown-plot",
        "plot_id",
    ),
    ("processing a lot in transit", in_transit, RuleViolation, "lot.in-transit", "inputs[0].lot"),
    (
        "writing to a lot after handing it over",
        handed_over,
        PermissionDeniedError,
        "access.organisation",
        "inputs[0].lot",
    ),
    (
        "planting another organisation's seed lot",
        planting_other_orgs_seed,
        InvalidInputError,
        "lot.unknown",
        "seed_lot",
    ),
    (
        "drying another organisation's lot",
        lambda w: dry(w, by="outsider"),
        InvalidInputError,
        "lot.unknown",
        "inputs[0].lot",
    ),
    (
        "sulfur fumigation",
        lambda w: dry(w, steps=[{"step": "washing"}, {"step": "sulfur-fumigation"}]),
        RuleViolation,
        "primary.sulfur-fumigation",
        "steps[1].step",
    ),
    (
        "dated before its input exists",
        lambda w: dry(w, event_time="2026-06-11T17:00:00+08:00"),
        RuleViolation,
        "event.before-inputs",
        "inputs[0].lot",
    ),
    (
        "more than the lot holds",
        lambda w: dry(w, inputs=[{"lot": "QS26H0007", "quantity_kg": "1300"}]),
        RuleViolation,
        "lineage.insufficient-quantity",
        "inputs[0].quantity_kg",
    ),
    (
        "output above inputs",
        lambda w: dry(w, output={"lot_code": "QS26D0009", "form": "prunella.dried", "quantity_kg": "1300"}),
        RuleViolation,
        "mass-balance.exceeds-inputs",
        "output",
    ),
    (
        "implausible drying yield",
        lambda w: dry(w, output={"lot_code": "QS26D0009", "form": "prunella.dried", "quantity_kg": "700"}),
        RuleViolation,
        "mass-balance.implausible-yield",
        "output",
    ),
    (
        "output of another herb",
        lambda w: dry(w, output={"lot_code": "QS26D0009", "form": "epimedium.dried", "quantity_kg": "400"}),
        RuleViolation,
        "lineage.mixed-herbs",
        "output.lot_code",
    ),
    ("a cycle in lineage", cycle, RuleViolation, "lineage.cycle", "output.lot_code"),
]


@pytest.mark.parametrize(("name", "act", "error", "rule", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_naming_field_and_rule_and_writes_nothing(
    world: World,
    name: str,
    act: Callable[[World], None],
    error: type[DomainError],
    rule: str,
    field: str | None,
) -> None:
    before: dict[str, int] = {}
    original = world.run

    def counting_run(*args: Any, **kw: Any) -> Any:
        # Take the snapshot just before the write that is expected to fail (setup steps may come first).
        before.clear()
        before.update(world.counts())
        return original(*args, **kw)

    world.run = counting_run  # type: ignore[method-assign]
    with pytest.raises(error) as caught:
        act(world)
    assert caught.value.extra.get("rule") == rule
    if field is not None:
        assert caught.value.field == field
    assert caught.value.status in (403, 409, 422)
    assert world.counts() == before


def test_harvest_outside_the_daodi_region_is_recorded_not_claimed(world: World) -> None:
    world.seed_lot(code="QS-S-2025-09")
    world.planting(seed="QS-S-2025-09", plot_id=world.outside_plot_id)
    world.run(
        lots.harvest,
        world.grower,
        HarvestIn(
            plot_id=world.outside_plot_id,
            lot_code="XX26H0001",
            quantity_kg=Decimal("100"),
            event_time=at("2026-08-12T08:00:00"),
        ),
    )
    lot = world.read(lots.get_lot, world.grower, "XX26H0001")
    assert lot.daodi is False
    rules = {(f.rule, f.severity) for f in world.read(lots.lot_findings, world.grower, "XX26H0001")}
    assert ("origin.outside-daodi-region", "hard") in rules
    assert ("harvest.out-of-season", "warning") in rules
