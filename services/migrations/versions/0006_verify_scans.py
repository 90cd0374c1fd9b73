"""Scan log of the public resolver (no personal data: hashed /24 network, coarse region, agent family).

Revision ID: 0006_verify_scans
Revises: 0005_sensors
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_verify_scans"
down_revision: str | None = "0005_sensors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verify_scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("lot_code", sa.String(length=20), nullable=True),
        sa.Column("serial", sa.String(length=20), nullable=True),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("network", sa.String(length=32), nullable=True),
        sa.Column("region", sa.String(length=40), nullable=True),
        sa.Column("agent", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_verify_scans_label", "verify_scans", ["gtin", "lot_code", "serial", "scanned_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("verify_scans")
