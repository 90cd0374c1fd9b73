"""Sensor tables: readings (unique per device, boot and seq), quarantine with counters, alarms, summaries."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


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


SENSOR_TABLES = [
    SensorReading.__table__,  # type: ignore[attr-defined]
    SensorQuarantine.__table__,  # type: ignore[attr-defined]
    SensorQuarantineCount.__table__,  # type: ignore[attr-defined]
    SensorAlarm.__table__,  # type: ignore[attr-defined]
    SensorSummary.__table__,  # type: ignore[attr-defined]
]
