"""Sensor tables (readings unique per device, boot and seq; quarantine with counters; alarms; summaries;
device sessions; broker accounts) and the sensor API shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.fields import UtcDateTime


class SensorReading(SQLModel, table=True):
    """One chained reading; the unique key is what dedupes before anything is chained."""

    __tablename__ = "sensor_readings"
    __table_args__ = (UniqueConstraint("device", "boot", "seq", name="uq_sensor_readings_device_boot_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    device: str = Field(max_length=40)
    boot: int = Field(sa_type=BigInteger)
    seq: int = Field(sa_type=BigInteger)
    plot: str = Field(max_length=20, index=True)
    time_ms: int = Field(sa_type=BigInteger, index=True)
    received_ms: int = Field(sa_type=BigInteger)
    hist: bool = False
    values_json: str = Field(sa_column=Column(Text, nullable=False))
    note_sha256: str = Field(max_length=64)
    ledger_index: int = Field(sa_type=BigInteger)


class SensorQuarantine(SQLModel, table=True):
    """A rejected message, kept with its reason (never silently dropped)."""

    __tablename__ = "sensor_quarantine"

    id: int | None = Field(default=None, primary_key=True)
    received_ms: int = Field(sa_type=BigInteger, index=True)
    topic: str = Field(max_length=300)
    device: str | None = Field(default=None, max_length=60, index=True)
    reason: str = Field(max_length=30, index=True)
    detail: str = Field(max_length=300)
    size: int
    payload_sha256: str = Field(max_length=64)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SensorQuarantineCount(SQLModel, table=True):
    """Counter of quarantined messages per reason (all gateways together)."""

    __tablename__ = "sensor_quarantine_counts"

    reason: str = Field(primary_key=True, max_length=30)
    count: int = Field(default=0, sa_type=BigInteger)
    last_ms: int = Field(default=0, sa_type=BigInteger)


class SensorAlarm(SQLModel, table=True):
    """An alert raised by a reading crossing a herb's threshold; chained on the plot's chain."""

    __tablename__ = "sensor_alarms"
    __table_args__ = (
        UniqueConstraint("device", "boot", "seq", "alarm", name="uq_sensor_alarms_reading_alarm"),
    )

    id: int | None = Field(default=None, primary_key=True)
    device: str = Field(max_length=40)
    boot: int = Field(sa_type=BigInteger)
    seq: int = Field(sa_type=BigInteger)
    plot: str = Field(max_length=20, index=True)
    herb: str | None = Field(default=None, max_length=40)
    alarm: str = Field(max_length=30)
    metric: str = Field(max_length=30)
    value: float
    threshold: float
    time_ms: int = Field(sa_type=BigInteger, index=True)
    org: str | None = Field(default=None, max_length=30, index=True)
    """The device's organisation (unified social credit code) when the alarm was raised."""
    ledger_index: int = Field(sa_type=BigInteger)


class SensorSummary(SQLModel, table=True):
    """Hourly or daily aggregate of one metric on one plot (recomputed from readings)."""

    __tablename__ = "sensor_summaries"
    __table_args__ = (
        UniqueConstraint("plot", "period", "start_ms", "metric", name="uq_sensor_summaries_bucket"),
    )

    id: int | None = Field(default=None, primary_key=True)
    plot: str = Field(max_length=20, index=True)
    period: str = Field(max_length=5)
    start_ms: int = Field(sa_type=BigInteger)
    metric: str = Field(max_length=30)
    count: int
    low: float
    high: float
    mean: float


class SensorDeviceSession(SQLModel, table=True):
    """A device's last birth and last death message (the retained presence state, kept durably)."""

    __tablename__ = "sensor_device_sessions"

    device: str = Field(primary_key=True, max_length=40)
    org: str = Field(max_length=30)
    boot: int | None = Field(default=None, sa_type=BigInteger)
    birth_ms: int | None = Field(default=None, sa_type=BigInteger)
    birth: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    death_ms: int | None = Field(default=None, sa_type=BigInteger)
    death: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SensorBrokerAccount(SQLModel, table=True):
    """An MQTT account: its Mosquitto password-file line (PBKDF2-SHA512), never the password itself."""

    __tablename__ = "sensor_broker_accounts"

    username: str = Field(primary_key=True, max_length=60)
    kind: str = Field(max_length=10)
    """`device` (may publish its own topics only) or `gateway` (reads every device topic)."""
    device: str | None = Field(default=None, max_length=40, index=True)
    password_line: str = Field(max_length=300)
    issued_ms: int = Field(sa_type=BigInteger)


SENSOR_TABLES = [
    SensorReading.__table__,  # type: ignore[attr-defined]
    SensorQuarantine.__table__,  # type: ignore[attr-defined]
    SensorQuarantineCount.__table__,  # type: ignore[attr-defined]
    SensorAlarm.__table__,  # type: ignore[attr-defined]
    SensorSummary.__table__,  # type: ignore[attr-defined]
    SensorDeviceSession.__table__,  # type: ignore[attr-defined]
    SensorBrokerAccount.__table__,  # type: ignore[attr-defined]
]


# -- API shapes -------------------------------------------------------------------------------------------

SummaryPeriod = Literal["hour", "day", "cycle"]


class AlarmPublic(BaseModel):
    """An alarm raised on a plot: which threshold, by which reading, and its ledger entry."""

    id: int
    plot: str
    org: str | None
    device: str
    herb: str | None
    alarm: str
    metric: str
    value: float
    threshold: float
    time: UtcDateTime = PField(description="device time of the reading that raised it")
    reading: dict[str, Any] = PField(description="{device, boot, seq} of that reading")
    ledger_index: int


class SummaryPublic(BaseModel):
    """Aggregate of one metric on one plot over an hour, a local day (+08:00) or a growing period."""

    plot: str
    period: SummaryPeriod
    start: UtcDateTime
    end: UtcDateTime
    cycle: str | None = PField(default=None, description="the planting's cycle, for period=cycle")
    metric: str
    count: int
    low: float
    high: float
    mean: float


class DeviceSessionPublic(BaseModel):
    """A device's last birth and death messages, as the gateway recorded them."""

    device: str
    org: str
    online: bool = PField(description="its last birth is newer than its last death")
    boot: int | None
    birth_at: UtcDateTime | None
    birth: dict[str, Any] | None
    death_at: UtcDateTime | None
    death: dict[str, Any] | None


class BrokerCredentials(BaseModel):
    """MQTT credentials, shown once: the broker keeps only the PBKDF2-SHA512 hash."""

    username: str
    password: str = PField(description="shown once; store it on the device")
    kind: Literal["device", "gateway"]
    topics: list[str] = PField(description="what the account may publish (device) or read (gateway)")


class GatewayAccountIn(BaseModel):
    username: str = PField(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
