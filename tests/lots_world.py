"""A small world for the lots tests: organisations, users, a plot in Queshan and one outside, helpers that run
use cases in their own transaction (committed, or rolled back on error) and count what was written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from ledger.log import Log
from services.db import ledger_store, make_engine
from services.epcis.models import EpcisEpc, EpcisEvent
from services.lots import service as lots
from services.lots.models import (
    EventLot,
    FieldOperationIn,
    FindingRecord,
    HarvestIn,
    Lot,
    LotEvent,
    LotLink,
    Planting,
    PlantingIn,
    PrimaryProcessingIn,
    SeedLotIn,
    Shipment,
    Unit,
)
from services.migrate import upgrade
from services.registry import service as registry
from services.registry.models import BaseIn, OrgIn, Pesticide, PlotIn, Principal, UserIn
from services.registry.rules import uscc_check_character
from services.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
T = TypeVar("T")
TABLES = (Lot, LotEvent, EventLot, LotLink, Planting, Unit, Shipment, FindingRecord, EpcisEvent, EpcisEpc)


def uscc(serial: str, admin_code: str = "411725") -> str:
    """A valid unified social credit code with a 9-character serial."""
    first17 = f"91{admin_code}{serial}"
    return first17 + uscc_check_character(first17)


def square(lon: float, lat: float, size: float = 0.004) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def at(text: str) -> datetime:
    """A local (UTC+8) time in the herbs' regions."""
    return datetime.fromisoformat(text + "+08:00")


class World:
    """A migrated database with an operator, a cooperative, a factory, a buyer and another cooperative."""

    def __init__(self, settings: Settings) -> None:
        upgrade(settings)
        self.engine: Engine = make_engine(settings.database_url)
        self.log = Log(ledger_store(settings.database_url))
        self.tokens: dict[int, str] = {}
        with Session(self.engine) as s:
            _, _, token = registry.bootstrap_admin(
                s, uscc=uscc("MA0000001"), org_name="Operator", user_name="Admin", now=NOW
            )
            self.admin = registry.authenticate(s, token)
            self.tokens[self.admin.user_id] = token
            self.coop_id = self._org(s, "MA0000002", "Queshan cooperative", "cooperative")
            self.factory_id = self._org(s, "MA0000003", "Decoction-piece factory", "factory")
            self.buyer_id = self._org(s, "MA0000004", "Hospital pharmacy", "buyer")
            self.other_id = self._org(s, "MA0000005", "Another cooperative", "cooperative")
            self.grower = self._user(s, self.coop_id, ["grower"])
            self.processor = self._user(s, self.factory_id, ["processor"])
            self.lab = self._user(s, self.factory_id, ["lab"])
            self.buyer = self._user(s, self.buyer_id, ["buyer"])
            self.outsider = self._user(s, self.other_id, ["grower", "processor"])
            base = registry.create_base(
                s,
                self.log,
                self.grower,
                BaseIn(code="QS-1", name="Queshan base", kind="production", admin_code="411725"),
                now=NOW,
            )
            self.plot_id = registry.register_plot(
                s,
                self.log,
                self.grower,
                PlotIn(
                    base_id=base.id,
                    code="QS-1-A",
                    name="A",
                    admin_code="411725",
                    geometry=square(114.0, 32.8),
                ),
                now=NOW,
            ).id
            self.outside_plot_id = registry.register_plot(
                s,
                self.log,
                self.grower,
                PlotIn(
                    base_id=base.id,
                    code="QS-1-X",
                    name="X",
                    admin_code="411725",
                    geometry=square(112.5, 32.0),
                ),
                now=NOW,
            ).id
            other_base = registry.create_base(
                s,
                self.log,
                self.outsider,
                BaseIn(code="OT-1", name="Other base", kind="production", admin_code="411725"),
                now=NOW,
            )
            self.other_plot_id = registry.register_plot(
                s,
                self.log,
                self.outsider,
                PlotIn(
                    base_id=other_base.id,
                    code="OT-1-A",
                    name="A",
                    admin_code="411725",
                    geometry=square(114.1, 32.9),
                ),
                now=NOW,
            ).id
            self.imidacloprid = s.execute(
                select(Pesticide.id).where(Pesticide.registration_no == "PD20170001")
            ).scalar_one()
            self.banned = s.execute(select(Pesticide.id).where(Pesticide.name_zh == "壮根灵")).scalar_one()
            s.commit()
        self.log.committed()

    def _org(self, s: Session, serial: str, name: str, kind: Any) -> int:
        org = registry.register_org(
            s, self.log, self.admin, OrgIn(uscc=uscc(serial), name=name, kind=kind), now=NOW
        )
        return org.id

    def _user(self, s: Session, org_id: int, roles: list[Any]) -> Principal:
        made = registry.create_user(
            s, self.admin, UserIn(org_id=org_id, name="someone", roles=roles), now=NOW
        )
        principal = registry.authenticate(s, made.api_key)
        self.tokens[principal.user_id] = made.api_key
        return principal

    def headers(self, principal: Principal) -> dict[str, str]:
        """Request headers that authenticate as `principal`."""
        return {"Authorization": f"Bearer {self.tokens[principal.user_id]}"}

    def run(self, use_case: Callable[..., T], principal: Principal, data: Any, **kw: Any) -> T:
        """Run one write use case in its own transaction, as the API adapter does."""
        with Session(self.engine) as s:
            result = use_case(s, principal, data, log=self.log, now=NOW, **kw)
            s.commit()
        self.log.committed()
        return result

    def read(self, use_case: Callable[..., T], *args: Any, **kw: Any) -> T:
        with Session(self.engine) as s:
            return use_case(s, *args, **kw)

    def counts(self) -> dict[str, int]:
        """Rows per table and the ledger size: what a rejected write must leave unchanged."""
        with Session(self.engine) as s:
            out = {
                t.__tablename__: s.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES
            }
        out["ledger"] = self.log.size()
        return out

    # -- a prunella chain up to a fresh lot -----------------------------------------------------------------

    def seed_lot(self, code: str = "QS-S-2025-01", kg: str = "25") -> None:
        self.run(
            lots.register_seed_lot,
            self.grower,
            SeedLotIn(
                lot_code=code,
                form="prunella.seed",
                quantity_kg=Decimal(kg),
                supplier="确山县夏枯草良种繁育基地",
                germination_rate=Decimal("86.5"),
                certificate="豫种证 2025-0117",
                event_time=at("2025-08-20T09:00:00"),
            ),
        )

    def planting(self, seed: str = "QS-S-2025-01", plot_id: int | None = None) -> None:
        self.run(
            lots.plant,
            self.grower,
            PlantingIn(
                plot_id=plot_id or self.plot_id,
                seed_lot=seed,
                cycle="2025-2026",
                quantity_kg=Decimal("1.2"),
                event_time=at("2025-09-25T08:00:00"),
            ),
        )

    def pesticide(self, when: str = "2026-05-01T07:30:00", product: int | None = None) -> None:
        self.run(
            lots.record_field_operation,
            self.grower,
            FieldOperationIn(
                plot_id=self.plot_id,
                operation="pesticide",
                pesticide_id=product or self.imidacloprid,
                dose=Decimal("30"),
                dose_unit="g/mu",
                event_time=at(when),
            ),
        )

    def harvest(self, code: str = "QS26H0007", kg: str = "1200", when: str = "2026-06-12T08:00:00") -> None:
        self.run(
            lots.harvest,
            self.grower,
            HarvestIn(
                plot_id=self.plot_id,
                lot_code=code,
                quantity_kg=Decimal(kg),
                event_time=at(when),
                gps={"lon": 114.002, "lat": 32.802},  # type: ignore[arg-type]
            ),
        )

    def dry(
        self, source: str = "QS26H0007", code: str = "QS26D0007", kg_in: str = "1200", kg_out: str = "420"
    ) -> None:
        self.run(
            lots.process_primary,
            self.grower,
            PrimaryProcessingIn.model_validate(
                {
                    "inputs": [{"lot": source, "quantity_kg": kg_in}],
                    "output": {"lot_code": code, "form": "prunella.dried", "quantity_kg": kg_out},
                    "steps": [
                        {"step": "sorting"},
                        {"step": "drying", "method": "sun", "temperature_c": "32"},
                    ],
                    "event_time": "2026-06-20T17:00:00+08:00",
                }
            ),
        )

    def fresh_lot(self) -> None:
        """Seed lot, planting, one pesticide application and the harvest of QS26H0007."""
        self.seed_lot()
        self.planting()
        self.pesticide()
        self.harvest()
