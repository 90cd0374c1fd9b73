"""Catalog, registry and ledger tables.

The ledger's DDL comes from its dialects (ledger.sqlstore.SQLiteDialect, services.ledger.pgstore.
PostgresDialect) so there is one definition of it; those statements are idempotent (IF NOT EXISTS).

Revision ID: 0001
Revises:
Create Date: 2026-11-23 20:12:19.187273
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.sqlstore import SQLiteDialect
from services.ledger.pgstore import PostgresDialect

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ledger_schema() -> list[str]:
    if op.get_bind().dialect.name == "sqlite":
        return SQLiteDialect().schema()
    return PostgresDialect().schema()


def upgrade() -> None:
    for statement in _ledger_schema():
        op.execute(statement)
    op.create_table(
        "catalog_herbs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("latin", sa.String(length=200), nullable=False),
        sa.Column("species", sa.String(length=300), nullable=False),
        sa.Column("part", sa.String(length=100), nullable=False),
        sa.Column("region_code", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "catalog_regions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("admin_code", sa.String(length=6), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "version", name="uq_catalog_regions_code_version"),
    )
    with op.batch_alter_table("catalog_regions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_regions_code"), ["code"], unique=False)

    op.create_table(
        "catalog_sources",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "version"),
    )
    op.create_table(
        "registry_orgs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("admin_code", sa.String(length=6), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uscc"),
    )
    op.create_table(
        "registry_pesticides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_no", sa.String(length=12), nullable=True),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("active_ingredient", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("banned", sa.Boolean(), nullable=False),
        sa.Column("phi_days", sa.JSON(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name_zh"),
        sa.UniqueConstraint("registration_no"),
    )
    op.create_table(
        "catalog_forms",
        sa.Column("id", sa.String(length=60), nullable=False),
        sa.Column("herb_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("gbt31774", sa.String(length=4), nullable=True),
        sa.Column("method", sa.String(length=500), nullable=True),
        sa.Column("auxiliaries", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["herb_id"],
            ["catalog_herbs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gtin"),
    )
    with op.batch_alter_table("catalog_forms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_forms_herb_id"), ["herb_id"], unique=False)

    op.create_table(
        "catalog_seasons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("herb_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("start_month", sa.Integer(), nullable=False),
        sa.Column("end_month", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["herb_id"],
            ["catalog_herbs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("catalog_seasons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_seasons_herb_id"), ["herb_id"], unique=False)

    op.create_table(
        "registry_bases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("admin_code", sa.String(length=6), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["registry_orgs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "code", name="uq_registry_bases_org_code"),
    )
    with op.batch_alter_table("registry_bases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_bases_org_id"), ["org_id"], unique=False)

    op.create_table(
        "registry_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["registry_orgs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("registry_users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_users_org_id"), ["org_id"], unique=False)

    op.create_table(
        "catalog_specs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["catalog_forms.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("form_id", "name", "version", name="uq_catalog_specs_form_name_version"),
    )
    with op.batch_alter_table("catalog_specs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_specs_form_id"), ["form_id"], unique=False)

    op.create_table(
        "catalog_yields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("herb_id", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("from_form", sa.String(length=60), nullable=False),
        sa.Column("to_form", sa.String(length=60), nullable=False),
        sa.Column("min_ratio", sa.Float(), nullable=False),
        sa.Column("max_ratio", sa.Float(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["from_form"],
            ["catalog_forms.id"],
        ),
        sa.ForeignKeyConstraint(
            ["herb_id"],
            ["catalog_herbs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["to_form"],
            ["catalog_forms.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("from_form", "to_form", name="uq_catalog_yields_from_to"),
    )
    with op.batch_alter_table("catalog_yields", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_catalog_yields_herb_id"), ["herb_id"], unique=False)

    op.create_table(
        "registry_api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["registry_users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    with op.batch_alter_table("registry_api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_api_keys_user_id"), ["user_id"], unique=False)

    op.create_table(
        "registry_plots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("base_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("admin_code", sa.String(length=6), nullable=False),
        sa.Column("geometry", sa.JSON(), nullable=False),
        sa.Column("area_mu", sa.Float(), nullable=False),
        sa.Column("centroid_lon", sa.Float(), nullable=False),
        sa.Column("centroid_lat", sa.Float(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["base_id"],
            ["registry_bases.id"],
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["registry_orgs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "code", name="uq_registry_plots_org_code"),
    )
    with op.batch_alter_table("registry_plots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_plots_base_id"), ["base_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_registry_plots_org_id"), ["org_id"], unique=False)

    op.create_table(
        "registry_devices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("plot_id", sa.Integer(), nullable=True),
        sa.Column("public_key", sa.String(length=300), nullable=True),
        sa.Column("signed_by", sa.String(length=10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["registry_orgs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plot_id"],
            ["registry_plots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("registry_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_registry_devices_org_id"), ["org_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_registry_devices_plot_id"), ["plot_id"], unique=False)


def downgrade() -> None:
    # The ledger tables stay: the log is append-only and a schema downgrade must never erase it.
    with op.batch_alter_table("registry_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_devices_plot_id"))
        batch_op.drop_index(batch_op.f("ix_registry_devices_org_id"))

    op.drop_table("registry_devices")
    with op.batch_alter_table("registry_plots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_plots_org_id"))
        batch_op.drop_index(batch_op.f("ix_registry_plots_base_id"))

    op.drop_table("registry_plots")
    with op.batch_alter_table("registry_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_api_keys_user_id"))

    op.drop_table("registry_api_keys")
    with op.batch_alter_table("catalog_yields", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_yields_herb_id"))

    op.drop_table("catalog_yields")
    with op.batch_alter_table("catalog_specs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_specs_form_id"))

    op.drop_table("catalog_specs")
    with op.batch_alter_table("registry_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_users_org_id"))

    op.drop_table("registry_users")
    with op.batch_alter_table("registry_bases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registry_bases_org_id"))

    op.drop_table("registry_bases")
    with op.batch_alter_table("catalog_seasons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_seasons_herb_id"))

    op.drop_table("catalog_seasons")
    with op.batch_alter_table("catalog_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_forms_herb_id"))

    op.drop_table("catalog_forms")
    op.drop_table("registry_pesticides")
    op.drop_table("registry_orgs")
    op.drop_table("catalog_sources")
    with op.batch_alter_table("catalog_regions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_catalog_regions_code"))

    op.drop_table("catalog_regions")
    op.drop_table("catalog_herbs")
