"""Versioned herb rules (minimum planting age, harvest yield ceiling per mu), loaded from the catalog data.

Revision ID: 0007_herb_rules
Revises: 0006_verify_scans
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_herb_rules"
down_revision: str | None = "0006_verify_scans"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_herb_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("herb_id", sa.String(length=40), sa.ForeignKey("catalog_herbs.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("min_planting_years", sa.Integer(), nullable=True),
        sa.Column("max_fresh_kg_per_mu", sa.Float(), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.UniqueConstraint("herb_id", "version", name="uq_catalog_herb_rules_herb_version"),
    )
    op.create_index("ix_catalog_herb_rules_herb_id", "catalog_herb_rules", ["herb_id"])


def downgrade() -> None:
    op.drop_table("catalog_herb_rules")
