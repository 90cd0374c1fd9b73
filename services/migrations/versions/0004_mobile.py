"""Mobile: sign-in credentials, refresh-token families, harvest-by-scan records (idempotency), photos.

Revision ID: 0004_mobile
Revises: 0003_lots
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004_mobile"
down_revision: str | None = "0003_lots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "accounts_credentials",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("registry_users.id"), primary_key=True),
        sa.Column("username", sa.String(length=40), nullable=True, unique=True),
        sa.Column("phone", sa.String(length=20), nullable=True, unique=True),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        _when("updated_at"),
    )
    op.create_table(
        "accounts_token_families",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("registry_users.id"), nullable=False),
        sa.Column("install_id", sa.String(length=64), nullable=False),
        _when("created_at"),
        _when("last_used_at"),
        _when("revoked_at", True),
        sa.Column("revoked_reason", sa.String(length=40), nullable=True),
    )
    op.create_index("ix_accounts_token_families_user_id", "accounts_token_families", ["user_id"])
    op.create_index("ix_accounts_token_families_install_id", "accounts_token_families", ["install_id"])
    op.create_table(
        "accounts_refresh_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "family_id", sa.String(length=32), sa.ForeignKey("accounts_token_families.id"), nullable=False
        ),
        sa.Column("token_sha256", sa.String(length=64), nullable=False, unique=True),
        _when("issued_at"),
        _when("expires_at"),
        _when("used_at", True),
    )
    op.create_index("ix_accounts_refresh_tokens_family_id", "accounts_refresh_tokens", ["family_id"])
    op.create_table(
        "labels_activations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("registry_orgs.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("registry_users.id"), nullable=False),
        sa.Column("client_id", sa.String(length=26), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        _when("recorded_at"),
        _when("received_at"),
        sa.Column("lot_code", sa.String(length=20), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.UniqueConstraint("org_id", "client_id", name="uq_labels_activations_org_client"),
    )
    op.create_index("ix_labels_activations_org_id", "labels_activations", ["org_id"])
    op.create_index("ix_labels_activations_user_id", "labels_activations", ["user_id"])
    op.create_index("ix_labels_activations_lot_code", "labels_activations", ["lot_code"])
    op.create_table(
        "labels_photos",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("registry_orgs.id"), primary_key=True),
        sa.Column("sha256", sa.String(length=64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("registry_users.id"), nullable=False),
        _when("created_at"),
    )
    op.create_table(
        "labels_photo_uploads",
        sa.Column("org_id", sa.Integer(), sa.ForeignKey("registry_orgs.id"), primary_key=True),
        sa.Column("sha256", sa.String(length=64), primary_key=True),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("received", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _when("updated_at"),
    )


def downgrade() -> None:
    for table in (
        "labels_photo_uploads",
        "labels_photos",
        "labels_activations",
        "accounts_refresh_tokens",
        "accounts_token_families",
        "accounts_credentials",
    ):
        op.drop_table(table)
