"""A world for the mobile API tests: the lots world (a cooperative with a planted Queshan plot, another
cooperative with its own plot), an app on the same SQLite file with a movable clock, pre-issued field labels
for both cooperatives, and phone sign-in credentials for their growers."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from lots_world import World
from sqlmodel import Session
from ulid import ULID

from mobile_api.api import get_clock
from services.accounts import service as accounts
from services.app import create_app
from services.labels import service as labels
from services.labels.models import IssueIn
from services.registry.models import Principal
from services.settings import Settings

CST = timezone(timedelta(hours=8))
HARVEST_DAY = datetime(2026, 6, 12, 8, 0, tzinfo=CST)
PASSWORD = "correct horse battery"
# A tiny but real JPEG header plus padding: enough for the server's image sniffing.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\xff\xd9"


class Clock:
    """The app's clock in these tests; `advance` moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class MobileWorld:
    def __init__(self, settings: Settings) -> None:
        self.world = World(settings)
        self.world.fresh_lot()  # seed lot, planting, a pesticide on 2026-05-01, and one harvest (QS26H0007)
        self.settings = settings
        self.app = create_app(settings)
        self.clock = Clock(datetime(2026, 6, 12, 10, 0, tzinfo=CST))
        self.app.dependency_overrides[get_clock] = self.clock
        self.client = TestClient(self.app)
        self.ctx = self.app.state.ctx
        self.labels = self.issue(self.world.grower, 6)
        self.other_labels = self.issue(self.world.outsider, 2)
        self.set_password(self.world.grower, username="grower.one", phone="138 0013 8000")
        self.set_password(self.world.outsider, username="outsider", phone=None)

    def issue(self, principal: Principal, count: int) -> list[str]:
        with Session(self.ctx.engine) as s:
            rows = labels.issue_labels(
                s,
                self.ctx.log,
                principal,
                IssueIn(form="prunella.fresh", count=count),
                signer=self.ctx.keys.label_signer,
                base_url=self.settings.public_base_url,
                now=self.clock.now,
            )
            uris = [r.uri for r in rows]
            s.commit()
        return uris

    def set_password(self, principal: Principal, *, username: str, phone: str | None) -> None:
        with Session(self.ctx.engine) as s:
            accounts.set_credentials(
                s,
                principal,
                principal.user_id,
                password=PASSWORD,
                username=username,
                phone=phone,
                now=self.clock.now,
            )
            s.commit()

    def sign_in(self, login: str = "grower.one", install: str = "install-1") -> dict[str, Any]:
        response = self.client.post(
            "/mobile/v1/auth/sign-in", json={"login": login, "password": PASSWORD, "install_id": install}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def headers(self, login: str = "grower.one") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sign_in(login)['access_token']}"}

    def record(self, labels: list[str], **overrides: Any) -> dict[str, Any]:
        """A harvest record as a phone queues it."""
        record: dict[str, Any] = {
            "id": str(ULID()),
            "type": "harvest",
            "recorded_at": (HARVEST_DAY + timedelta(minutes=5)).isoformat(),
            "plot_id": self.world.plot_id,
            "labels": labels,
            "quantity_kg": "300",
            "harvested_at": HARVEST_DAY.isoformat(),
            "gps": {"lon": 114.002, "lat": 32.802, "accuracy_m": 6},
            "photos": [],
        }
        record.update(overrides)
        return record


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
