"""Label table: issued, activated and voided labels.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "labels_labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("form_id", sa.String(length=60), sa.ForeignKey("catalog_forms.id"), nullable=False),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("registry_orgs.id"), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("uri", sa.String(length=400), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("lot_code", sa.String(length=20), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=200), nullable=True),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("gtin", "serial"),
    )
    op.create_index("ix_labels_labels_gtin", "labels_labels", ["gtin"])
    op.create_index("ix_labels_labels_org_id", "labels_labels", ["org_id"])
    op.create_index("ix_labels_labels_lot_code", "labels_labels", ["lot_code"])


def downgrade() -> None:
    op.drop_table("labels_labels")
