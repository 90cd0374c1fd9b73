"""Edge: alarms carry their organisation; device sessions (birth/death); broker accounts.

Revision ID: 0008_edge
Revises: 0007_herb_rules
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_edge"
down_revision: str | None = "0007_herb_rules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sensor_alarms") as batch:
        batch.add_column(sa.Column("org", sa.String(length=30), nullable=True))
        batch.create_index(op.f("ix_sensor_alarms_org"), ["org"], unique=False)
    op.create_table(
        "sensor_device_sessions",
        sa.Column("device", sa.String(length=40), nullable=False),
        sa.Column("org", sa.String(length=30), nullable=False),
        sa.Column("boot", sa.BigInteger(), nullable=True),
        sa.Column("birth_ms", sa.BigInteger(), nullable=True),
        sa.Column("birth", sa.Text(), nullable=True),
        sa.Column("death_ms", sa.BigInteger(), nullable=True),
        sa.Column("death", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("device"),
    )
    op.create_table(
        "sensor_broker_accounts",
        sa.Column("username", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("device", sa.String(length=40), nullable=True),
        sa.Column("password_line", sa.String(length=300), nullable=False),
        sa.Column("issued_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_index(
        op.f("ix_sensor_broker_accounts_device"), "sensor_broker_accounts", ["device"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sensor_broker_accounts_device"), table_name="sensor_broker_accounts")
    op.drop_table("sensor_broker_accounts")
    op.drop_table("sensor_device_sessions")
    with op.batch_alter_table("sensor_alarms") as batch:
        batch.drop_index(op.f("ix_sensor_alarms_org"))
        batch.drop_column("org")
