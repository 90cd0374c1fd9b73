"""Sensor tables: readings (deduplicated by device, boot, seq), quarantine with counters, alarms, summaries.

Revision ID: 0005_sensors
Revises: 0004_mobile
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_sensors"
down_revision: str | None = "0004_mobile"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
TABLES = (
    "sensor_summaries",
    "sensor_readings",
    "sensor_quarantine_counts",
    "sensor_quarantine",
    "sensor_alarms",
)


def upgrade() -> None:
    op.create_table(
        "sensor_alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=40), nullable=False),
        sa.Column("boot", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("plot", sa.String(length=20), nullable=False),
        sa.Column("herb", sa.String(length=40), nullable=True),
        sa.Column("alarm", sa.String(length=30), nullable=False),
        sa.Column("metric", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device", "boot", "seq", "alarm", name="uq_sensor_alarms_reading_alarm"),
    )
    op.create_index(op.f("ix_sensor_alarms_plot"), "sensor_alarms", ["plot"], unique=False)
    op.create_index(op.f("ix_sensor_alarms_time_ms"), "sensor_alarms", ["time_ms"], unique=False)
    op.create_table(
        "sensor_quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=300), nullable=False),
        sa.Column("device", sa.String(length=60), nullable=True),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_sensor_quarantine_device"), "sensor_quarantine", ["device"], unique=False)
    op.create_index(op.f("ix_sensor_quarantine_reason"), "sensor_quarantine", ["reason"], unique=False)
    op.create_index(
        op.f("ix_sensor_quarantine_received_ms"), "sensor_quarantine", ["received_ms"], unique=False
    )
    op.create_table(
        "sensor_quarantine_counts",
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("reason"),
    )
    op.create_table(
        "sensor_readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=40), nullable=False),
        sa.Column("boot", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("plot", sa.String(length=20), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_ms", sa.BigInteger(), nullable=False),
        sa.Column("hist", sa.Boolean(), nullable=False),
        sa.Column("values_json", sa.Text(), nullable=False),
        sa.Column("note_sha256", sa.String(length=64), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device", "boot", "seq", name="uq_sensor_readings_device_boot_seq"),
    )
    op.create_index(op.f("ix_sensor_readings_plot"), "sensor_readings", ["plot"], unique=False)
    op.create_index(op.f("ix_sensor_readings_time_ms"), "sensor_readings", ["time_ms"], unique=False)
    op.create_table(
        "sensor_summaries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plot", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=5), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("metric", sa.String(length=30), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plot", "period", "start_ms", "metric", name="uq_sensor_summaries_bucket"),
    )
    op.create_index(op.f("ix_sensor_summaries_plot"), "sensor_summaries", ["plot"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
