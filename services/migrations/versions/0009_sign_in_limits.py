"""Mobile sign-in throttling: counts of failed sign-ins per account (or unknown login) and client network.

Revision ID: 0009_sign_in_limits
Revises: 0008_edge
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_sign_in_limits"
down_revision: str | None = "0008_edge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts_sign_in_failures",
        sa.Column("key_sha256", sa.String(length=64), primary_key=True),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_accounts_sign_in_failures_window_start", "accounts_sign_in_failures", ["window_start"]
    )


def downgrade() -> None:
    op.drop_index("ix_accounts_sign_in_failures_window_start", table_name="accounts_sign_in_failures")
    op.drop_table("accounts_sign_in_failures")
