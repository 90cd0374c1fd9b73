"""Device protocol rules without a broker or a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ledger.monitor import check_sensor_entry
from ledger.note import Ed25519Signer
from services.sensors.rules import (
    Accepted,
    DeviceInfo,
    Rejected,
    bucket_start,
    check_message,
    data_topic,
    load_limits,
    reading_text,
    summarise,
)

NOW = datetime(2026, 6, 12, 0, 0, tzinfo=UTC)
LIMITS = load_limits()
DEVICE = Ed25519Signer.generate("ws-0001")
INFO = DeviceInfo("ws-0001", "ORG1", "WS-P01", "notoginseng", "device", DEVICE.verifier())
GATEWAY = Ed25519Signer.generate("edge.daodi.dev/gateway")


def note(
    readings: dict[str, float] | None = None,
    *,
    seq: int = 1,
    at: datetime = NOW,
    hist: bool = False,
    signer: Ed25519Signer = DEVICE,
    device: str = "ws-0001",
) -> bytes:
    text = reading_text(
        device, 3, seq, at.isoformat(timespec="milliseconds"), readings or {"air_temp": 20.5}, hist=hist
    )
    return signer.sign_note(text).encode()


def check(payload: bytes, info: DeviceInfo | None = INFO, topic: str | None = None) -> Accepted | Rejected:
    where = topic or data_topic("ORG1", "ws-0001")
    return check_message(where, payload, info, NOW, LIMITS, GATEWAY.sign_note)


def reason(result: Accepted | Rejected) -> str:
    assert isinstance(result, Rejected), result
    return result.reason


def test_signed_reading_is_accepted_and_its_entry_body_reverifies_with_the_monitor() -> None:
    payload = note({"soil_moisture": 25.0, "air_temp": 18.0})
    result = check(payload)
    assert isinstance(result, Accepted)
    assert result.key == ("ws-0001", 3, 1)
    assert result.note == payload.decode()
    assert result.alarms == ()
    body = result.body("2026-06-12T00:00:00.000Z")
    assert body["signed_by"] == "device"
    assert check_sensor_entry(body, lambda d: DEVICE.verifier() if d == "ws-0001" else None) is None


def test_forged_signature_is_bad_signature() -> None:
    forger = Ed25519Signer("ws-0001", Ed25519Signer.generate("x").private_key)
    assert reason(check(note(signer=forger))) == "bad-signature"


def test_unsigned_reading_is_bad_signature_and_garbage_is_malformed() -> None:
    assert reason(check(b'{"v":1}\n')) == "bad-signature"
    assert reason(check(b"\xff\xfe")) == "malformed"
    text = "not json\n"
    assert reason(check(DEVICE.sign_note(text).encode())) == "malformed"


def test_unknown_device_and_wrong_topic() -> None:
    assert reason(check(note(), info=None)) == "unknown-device"
    assert reason(check(note(), topic=data_topic("ORG2", "ws-0001"))) == "wrong-topic-device"
    other = note(device="ws-0002")
    assert reason(check(other)) == "wrong-topic-device"


def test_oversized_payload_is_rejected_before_anything_else() -> None:
    assert reason(check(b"x" * (LIMITS.max_payload_bytes + 1), info=None)) == "oversized"


@pytest.mark.parametrize(
    ("readings", "expected"),
    [({"air_temp": 80.0}, "implausible"), ({"ph": 1.0}, "implausible"), ({"voltage": 3.3}, "malformed")],
)
def test_out_of_range_or_unknown_metrics(readings: dict[str, float], expected: str) -> None:
    assert reason(check(note(readings))) == expected


def test_clock_skew_is_flagged_then_rejected_and_backfill_is_accepted() -> None:
    flagged = check(note(at=NOW - timedelta(seconds=LIMITS.flag_skew_s + 5)))
    assert isinstance(flagged, Accepted) and flagged.flags == ("clock-skew",)
    assert reason(check(note(at=NOW - timedelta(seconds=LIMITS.reject_skew_s + 5)))) == "skewed"
    assert reason(check(note(at=NOW + timedelta(seconds=LIMITS.max_future_s + 5)))) == "skewed"
    backfill = check(note(at=NOW - timedelta(days=2), hist=True))
    assert isinstance(backfill, Accepted) and backfill.hist and backfill.flags == ("hist",)
    too_old = NOW - timedelta(seconds=LIMITS.max_backfill_s + 60)
    assert reason(check(note(at=too_old, hist=True))) == "skewed"


@pytest.mark.parametrize(
    ("readings", "alarms"),
    [
        ({"air_temp": -1.0}, {"frost"}),
        ({"air_temp": 33.0}, {"heat"}),
        ({"soil_moisture": 45.0}, {"waterlogging"}),
        ({"soil_moisture": 8.0, "air_temp": 35.0}, {"drought", "heat"}),
        ({"soil_moisture": 25.0, "air_temp": 20.0}, set()),
    ],
)
def test_notoginseng_thresholds_raise_alarms(readings: dict[str, float], alarms: set[str]) -> None:
    result = check(note(readings))
    assert isinstance(result, Accepted)
    assert {a.alarm for a in result.alarms} == alarms


def test_thresholds_come_from_the_data_file_and_differ_per_herb() -> None:
    prunella = DeviceInfo("ws-0001", "ORG1", "QS-P01", "prunella", "device", DEVICE.verifier())
    result = check(note({"air_temp": 33.0}), info=prunella)
    assert isinstance(result, Accepted) and result.alarms == ()
    raw = json.loads(json.dumps(LIMITS.raw))
    assert any(a["alarm"] == "heat" for a in raw["alarms"]["notoginseng"])


def test_gateway_signed_device_gets_the_gateway_signature() -> None:
    info = DeviceInfo("ws-0001", "ORG1", "WS-P01", "notoginseng", "gateway", None)
    text = reading_text("ws-0001", 1, 9, NOW.isoformat(), {"rh": 60.0})
    result = check(text.encode(), info=info)
    assert isinstance(result, Accepted)
    assert result.signed_by == "gateway"
    assert result.note == GATEWAY.sign_note(text)
    no_key = check_message(data_topic("ORG1", "ws-0001"), text.encode(), info, NOW, LIMITS, None)
    assert reason(no_key) == "bad-signature"


def test_daily_buckets_follow_china_time_and_summaries_aggregate() -> None:
    ms = int(datetime(2026, 6, 12, 17, 0, tzinfo=UTC).timestamp() * 1000)  # 01:00 on 13 June in +08:00
    day = bucket_start(ms, "day")
    assert datetime.fromtimestamp(day / 1000, UTC) == datetime(2026, 6, 12, 16, 0, tzinfo=UTC)
    rows = [("P", ms, {"air_temp": 10.0}), ("P", ms + 60_000, {"air_temp": 20.0})]
    [(key, agg)] = summarise(rows, "hour").items()
    assert key == ("P", bucket_start(ms, "hour"), "air_temp")
    assert (agg.count, agg.low, agg.high, agg.total / agg.count) == (2, 10.0, 20.0, 15.0)
