"""Sensor API through TestClient: alarms and summaries for the grower and the regulator, device sessions,
broker credentials and the rendered Mosquitto files."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lots_world import World, at, uscc
from sqlmodel import Session

from ledger.note import Ed25519Signer
from services.app import create_app
from services.registry.models import Principal
from services.sensors.rules import DeviceInfo, data_topic, load_limits, reading_text
from services.sensors.service import MemoryDirectory, Message, Presence, SensorIngest
from services.settings import Settings

PROBLEM = "application/problem+json"
COOP, OTHER = uscc("MA0000002"), uscc("MA0000005")
SIGNERS = {d: Ed25519Signer.generate(d) for d in ("qs-0001", "ot-0001")}
DEVICES = [
    DeviceInfo("qs-0001", COOP, "QS-1-A", "notoginseng", "device", SIGNERS["qs-0001"].verifier()),
    DeviceInfo("ot-0001", OTHER, "OT-1-A", "notoginseng", "device", SIGNERS["ot-0001"].verifier()),
]


class Rig:
    def __init__(self, world: World, client: TestClient) -> None:
        self.world = world
        self.client = client
        self.ingest = SensorIngest(
            engine=world.engine, log=world.log, directory=MemoryDirectory(DEVICES), limits=load_limits()
        )
        with Session(world.engine) as s:
            self.regulator = world._user(s, world.admin.org_id, ["regulator"])
            s.commit()
        self.seq = 0

    def read(self, device: str, when: datetime, readings: dict[str, float]) -> None:
        """Record one signed reading of `device` taken (and received) at `when`."""
        self.seq += 1
        org = next(d.org for d in DEVICES if d.device == device)
        text = reading_text(device, 1, self.seq, when.isoformat(), readings)
        message = Message(data_topic(org, device), SIGNERS[device].sign_note(text).encode(), when)
        verdict = self.ingest.check(message)
        assert not hasattr(verdict, "reason"), verdict
        assert self.ingest.record([(message, verdict)]) != [None]  # type: ignore[list-item]

    def get(self, path: str, who: Principal, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.world.headers(who))


@pytest.fixture
def rig(settings: Settings) -> Iterator[Rig]:
    world = World(settings)
    with TestClient(create_app(settings)) as client:
        yield Rig(world, client)


def test_alarms_show_up_for_the_plots_grower_and_the_regulator_only(rig: Rig) -> None:
    w = rig.world
    rig.read("qs-0001", at("2026-01-10T05:00:00"), {"air_temp": -2.5})
    rig.read("ot-0001", at("2026-01-10T05:10:00"), {"air_temp": -1.0, "soil_moisture": 45.0})
    rig.read("qs-0001", at("2026-01-10T12:00:00"), {"air_temp": 8.0})  # no alarm
    mine = rig.get("/api/v1/sensors/alarms", w.grower).json()
    assert mine["total"] == 1
    [frost] = mine["items"]
    assert (frost["plot"], frost["alarm"], frost["value"], frost["org"]) == ("QS-1-A", "frost", -2.5, COOP)
    assert frost["reading"] == {"device": "qs-0001", "boot": 1, "seq": 1}
    assert w.log.size() > frost["ledger_index"] >= 0
    theirs = rig.get("/api/v1/sensors/alarms", w.outsider).json()
    assert {a["alarm"] for a in theirs["items"]} == {"frost", "waterlogging"}
    assert {a["plot"] for a in theirs["items"]} == {"OT-1-A"}
    everything = rig.get("/api/v1/sensors/alarms", rig.regulator, limit=2).json()
    assert everything["total"] == 3 and len(everything["items"]) == 2
    assert everything["items"][0]["plot"] == "OT-1-A"  # newest first
    assert rig.get("/api/v1/sensors/alarms", rig.regulator, plot="QS-1-A").json()["total"] == 1
    assert rig.get("/api/v1/sensors/alarms", rig.regulator, alarm="waterlogging").json()["total"] == 1
    later = rig.get("/api/v1/sensors/alarms", rig.regulator, since="2026-01-10T05:05:00+08:00").json()
    assert later["total"] == 2
    naive = rig.get("/api/v1/sensors/alarms", rig.regulator, since="2026-01-10T05:05:00")
    assert naive.status_code == 400 and naive.headers["content-type"] == PROBLEM
    assert naive.json()["field"] == "since"
    assert rig.client.get("/api/v1/sensors/alarms").status_code == 401


def test_summaries_per_hour_day_and_growing_period(rig: Rig) -> None:
    w = rig.world
    w.seed_lot()
    w.planting()  # cycle 2025-2026, planted 2025-09-25 08:00 +08:00
    w.harvest()  # 2026-06-12 08:00 +08:00
    rig.read("qs-0001", at("2025-10-01T09:10:00"), {"air_temp": 20.0, "rh": 60.0})
    rig.read("qs-0001", at("2025-10-01T09:40:00"), {"air_temp": 24.0})
    rig.read("qs-0001", at("2026-06-01T14:00:00"), {"air_temp": 30.0})
    rig.read("qs-0001", at("2026-07-01T14:00:00"), {"air_temp": 35.0})  # after the harvest
    hours = rig.get("/api/v1/sensors/summaries", w.grower, plot="QS-1-A", period="hour", metric="air_temp")
    assert [(i["count"], i["mean"]) for i in hours.json()["items"]] == [(2, 22.0), (1, 30.0), (1, 35.0)]
    days = rig.get("/api/v1/sensors/summaries", w.grower, plot="QS-1-A", metric="air_temp").json()
    assert days["items"][0]["start"].startswith("2025-09-30T16:00:00")  # the local day, +08:00
    assert [i["high"] for i in days["items"]] == [24.0, 30.0, 35.0]
    cycle = rig.get("/api/v1/sensors/summaries", w.grower, plot="QS-1-A", period="cycle").json()
    by_metric = {i["metric"]: i for i in cycle["items"]}
    assert set(by_metric) == {"air_temp", "rh"} and cycle["total"] == 2
    temp = by_metric["air_temp"]
    assert (temp["cycle"], temp["count"], temp["low"], temp["high"]) == ("2025-2026", 3, 20.0, 30.0)
    assert temp["mean"] == pytest.approx(74.0 / 3)
    assert temp["start"].startswith("2025-09-25T00:00:00") and temp["end"].startswith("2026-06-12T00:00:00")
    hidden = rig.get("/api/v1/sensors/summaries", w.outsider, plot="QS-1-A")
    assert hidden.status_code == 404 and hidden.json()["field"] == "plot"
    assert rig.get("/api/v1/sensors/summaries", rig.regulator, plot="QS-1-A").json()["total"] == 4
    bad = rig.get("/api/v1/sensors/summaries", w.grower, plot="QS-1-A", period="week")
    assert bad.status_code == 400 and bad.json()["field"] == "period"


def test_device_sessions_keep_the_last_birth_and_death(rig: Rig) -> None:
    w = rig.world
    birth = Presence("qs-0001", COOP, "birth", {"boot": 7, "fw": "1.4.2", "clock": "gnss"}, 1_000)
    rig.ingest.record([], [], [birth])
    got = rig.get("/api/v1/devices/qs-0001/session", w.grower).json()
    assert (got["online"], got["boot"], got["birth"]["fw"], got["death"]) == (True, 7, "1.4.2", None)
    rig.ingest.record([], [], [Presence("qs-0001", COOP, "death", {"reason": "battery"}, 2_000)])
    # The retained birth comes again when a gateway resubscribes: not news, the session stays dead.
    rig.ingest.record([], [], [Presence("qs-0001", COOP, "birth", birth.info, 3_000)])
    got = rig.get("/api/v1/devices/qs-0001/session", w.grower).json()
    assert (got["online"], got["death"]["reason"]) == (False, "battery")
    assert got["birth_at"].startswith("1970-01-01T00:00:01")
    assert rig.get("/api/v1/devices/qs-0001/session", w.outsider).status_code == 404
    listed = rig.get("/api/v1/sensors/sessions", rig.regulator, online=False).json()
    assert [s["device"] for s in listed["items"]] == ["qs-0001"]
    assert rig.get("/api/v1/sensors/sessions", w.outsider).json()["total"] == 0


def _check_password(line: str, username: str, password: str) -> bool:
    user, _, rest = line.partition(":")
    _, kind, iterations, salt, digest = rest.split("$")
    expected = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return user == username and kind == "7" and base64.b64decode(digest) == expected


def test_provisioning_issues_broker_credentials_once_and_renders_the_mosquitto_files(rig: Rig) -> None:
    w = rig.world
    key = Ed25519Signer.generate("qs-0009").verifier_key()
    device = rig.client.post(
        "/api/v1/devices", json={"id": "qs-0009", "public_key": key}, headers=w.headers(w.grower)
    )
    assert device.status_code == 201, device.text
    path = "/api/v1/devices/qs-0009/broker-credentials"
    assert rig.client.post(path, headers=w.headers(w.outsider)).status_code == 404
    issued = rig.client.post(path, headers=w.headers(w.grower))
    assert issued.status_code == 201, issued.text
    creds = issued.json()
    assert creds["username"] == "qs-0009" and len(creds["password"]) >= 32
    assert creds["topics"][0] == f"daodi/v1/{COOP}/qs-0009/data"
    gateway = rig.client.post(
        "/api/v1/sensors/broker/gateways", json={"username": "gw-1"}, headers=w.headers(w.admin)
    )
    assert gateway.status_code == 201
    denied = rig.client.get("/api/v1/sensors/broker/passwd", headers=w.headers(w.grower))
    assert denied.status_code == 403 and denied.headers["content-type"] == PROBLEM
    passwd = rig.client.get("/api/v1/sensors/broker/passwd", headers=w.headers(w.admin)).text
    lines = dict(line.split(":", 1) for line in passwd.splitlines())
    assert set(lines) == {"gw-1", "qs-0009"}
    assert _check_password(f"qs-0009:{lines['qs-0009']}", "qs-0009", creds["password"])
    assert _check_password(f"gw-1:{lines['gw-1']}", "gw-1", gateway.json()["password"])
    assert creds["password"] not in passwd
    acl = rig.client.get("/api/v1/sensors/broker/acl", headers=w.headers(w.admin)).text
    assert f"user qs-0009\ntopic write daodi/v1/{COOP}/qs-0009/data\n" in acl
    assert "user gw-1\ntopic read daodi/v1/#" in acl
    rotated = rig.client.post(path, headers=w.headers(w.grower)).json()
    assert rotated["password"] != creds["password"]
    passwd = rig.client.get("/api/v1/sensors/broker/passwd", headers=w.headers(w.admin)).text
    assert _check_password(
        next(x for x in passwd.splitlines() if x.startswith("qs-0009:")), "qs-0009", rotated["password"]
    )
