"""Lots, events, lineage, plantings, units, shipments and findings; the EPCIS event index and captures.

Revision ID: 0003_lots
Revises: 0002
Create Date: 2026-11-23 20:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_lots"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "epcis_captures",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.String(length=300), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["registry_orgs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_epcis_captures_org_id"), "epcis_captures", ["org_id"], unique=False)
    op.create_table(
        "lots_lots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("holder_org_id", sa.Integer(), nullable=False),
        sa.Column("herb_id", sa.String(length=40), nullable=False),
        sa.Column("form_id", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("quantity_g", sa.BigInteger(), nullable=False),
        sa.Column("remaining_g", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.Column("qc_status", sa.String(length=10), nullable=False),
        sa.Column("spec_id", sa.Integer(), nullable=True),
        sa.Column("plot_id", sa.Integer(), nullable=True),
        sa.Column("daodi", sa.Boolean(), nullable=True),
        sa.Column("supplier", sa.String(length=200), nullable=True),
        sa.Column("germination_rate", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("certificate", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["catalog_forms.id"],
        ),
        sa.ForeignKeyConstraint(
            ["herb_id"],
            ["catalog_herbs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["holder_org_id"],
            ["registry_orgs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["registry_orgs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plot_id"],
            ["registry_plots.id"],
        ),
        sa.ForeignKeyConstraint(
            ["spec_id"],
            ["catalog_specs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_index(op.f("ix_lots_lots_form_id"), "lots_lots", ["form_id"], unique=False)
    op.create_index(op.f("ix_lots_lots_herb_id"), "lots_lots", ["herb_id"], unique=False)
    op.create_index(op.f("ix_lots_lots_holder_org_id"), "lots_lots", ["holder_org_id"], unique=False)
    op.create_index(op.f("ix_lots_lots_org_id"), "lots_lots", ["org_id"], unique=False)
    op.create_index(op.f("ix_lots_lots_plot_id"), "lots_lots", ["plot_id"], unique=False)
    op.create_table(
        "lots_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("biz_step", sa.String(length=100), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tz_offset", sa.String(length=6), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("plot_id", sa.Integer(), nullable=True),
        sa.Column("corrects_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=60), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.Column("leaf_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["corrects_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["lots_lots.id"],
        ),
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
    op.create_index(op.f("ix_lots_events_corrects_id"), "lots_events", ["corrects_id"], unique=False)
    op.create_index(op.f("ix_lots_events_event_time"), "lots_events", ["event_time"], unique=False)
    op.create_index(op.f("ix_lots_events_lot_id"), "lots_events", ["lot_id"], unique=False)
    op.create_index(op.f("ix_lots_events_org_id"), "lots_events", ["org_id"], unique=False)
    op.create_index(op.f("ix_lots_events_plot_id"), "lots_events", ["plot_id"], unique=False)
    op.create_index("ix_lots_events_type_time", "lots_events", ["type", "event_time"], unique=False)
    op.create_table(
        "epcis_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=30), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=True),
        sa.Column("biz_step", sa.String(length=300), nullable=True),
        sa.Column("disposition", sa.String(length=300), nullable=True),
        sa.Column("read_point", sa.String(length=300), nullable=True),
        sa.Column("biz_location", sa.String(length=300), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("capture_id", sa.String(length=40), nullable=True),
        sa.Column("lot_event_id", sa.Integer(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["capture_id"],
            ["epcis_captures.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lot_event_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["registry_orgs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(op.f("ix_epcis_events_biz_location"), "epcis_events", ["biz_location"], unique=False)
    op.create_index(op.f("ix_epcis_events_biz_step"), "epcis_events", ["biz_step"], unique=False)
    op.create_index(op.f("ix_epcis_events_event_type"), "epcis_events", ["event_type"], unique=False)
    op.create_index(op.f("ix_epcis_events_lot_event_id"), "epcis_events", ["lot_event_id"], unique=False)
    op.create_index(op.f("ix_epcis_events_org_id"), "epcis_events", ["org_id"], unique=False)
    op.create_index("ix_epcis_events_time", "epcis_events", ["event_time"], unique=False)
    op.create_table(
        "lots_event_lots",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("quantity_g", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["lots_lots.id"],
        ),
        sa.PrimaryKeyConstraint("event_id", "lot_id", "role"),
    )
    op.create_index(op.f("ix_lots_event_lots_lot_id"), "lots_event_lots", ["lot_id"], unique=False)
    op.create_table(
        "lots_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=60), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("message_en", sa.String(length=500), nullable=False),
        sa.Column("message_zh", sa.String(length=500), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["lots_lots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_lots_findings_event_id"), "lots_findings", ["event_id"], unique=False)
    op.create_index(op.f("ix_lots_findings_lot_id"), "lots_findings", ["lot_id"], unique=False)
    op.create_table(
        "lots_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("quantity_g", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["child_id"],
            ["lots_lots.id"],
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["lots_lots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_lots_links_child_id"), "lots_links", ["child_id"], unique=False)
    op.create_index(op.f("ix_lots_links_event_id"), "lots_links", ["event_id"], unique=False)
    op.create_index(op.f("ix_lots_links_parent_id"), "lots_links", ["parent_id"], unique=False)
    op.create_table(
        "lots_plantings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("plot_id", sa.Integer(), nullable=False),
        sa.Column("seed_lot_id", sa.Integer(), nullable=False),
        sa.Column("cycle", sa.String(length=20), nullable=False),
        sa.Column("planted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("quantity_g", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["registry_orgs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["plot_id"],
            ["registry_plots.id"],
        ),
        sa.ForeignKeyConstraint(
            ["seed_lot_id"],
            ["lots_lots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plot_id", "cycle", name="uq_lots_plantings_plot_cycle"),
    )
    op.create_index(op.f("ix_lots_plantings_org_id"), "lots_plantings", ["org_id"], unique=False)
    op.create_index(op.f("ix_lots_plantings_plot_id"), "lots_plantings", ["plot_id"], unique=False)
    op.create_index(op.f("ix_lots_plantings_seed_lot_id"), "lots_plantings", ["seed_lot_id"], unique=False)
    op.create_table(
        "lots_shipments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("from_org_id", sa.Integer(), nullable=False),
        sa.Column("to_org_id", sa.Integer(), nullable=False),
        sa.Column("quantity_g", sa.BigInteger(), nullable=False),
        sa.Column("delivery_ref", sa.String(length=60), nullable=False),
        sa.Column("invoice_ref", sa.String(length=60), nullable=True),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shipped_event_id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_event_id", sa.Integer(), nullable=True),
        sa.Column("received_g", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["from_org_id"],
            ["registry_orgs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["lots_lots.id"],
        ),
        sa.ForeignKeyConstraint(
            ["received_event_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["shipped_event_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["to_org_id"],
            ["registry_orgs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_lots_shipments_from_org_id"), "lots_shipments", ["from_org_id"], unique=False)
    op.create_index(op.f("ix_lots_shipments_lot_id"), "lots_shipments", ["lot_id"], unique=False)
    op.create_index(op.f("ix_lots_shipments_to_org_id"), "lots_shipments", ["to_org_id"], unique=False)
    op.create_table(
        "lots_units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("net_g", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["lots_events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["lots_lots.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lot_id", "serial", name="uq_lots_units_lot_serial"),
    )
    op.create_index(op.f("ix_lots_units_lot_id"), "lots_units", ["lot_id"], unique=False)
    op.create_table(
        "epcis_epcs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_row_id", sa.Integer(), nullable=False),
        sa.Column("epc", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_row_id"],
            ["epcis_events.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_epcis_epcs_epc_role", "epcis_epcs", ["epc", "role"], unique=False)
    op.create_index(op.f("ix_epcis_epcs_event_row_id"), "epcis_epcs", ["event_row_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_epcis_epcs_event_row_id"), table_name="epcis_epcs")
    op.drop_index("ix_epcis_epcs_epc_role", table_name="epcis_epcs")
    op.drop_table("epcis_epcs")
    op.drop_index(op.f("ix_lots_units_lot_id"), table_name="lots_units")
    op.drop_table("lots_units")
    op.drop_index(op.f("ix_lots_shipments_to_org_id"), table_name="lots_shipments")
    op.drop_index(op.f("ix_lots_shipments_lot_id"), table_name="lots_shipments")
    op.drop_index(op.f("ix_lots_shipments_from_org_id"), table_name="lots_shipments")
    op.drop_table("lots_shipments")
    op.drop_index(op.f("ix_lots_plantings_seed_lot_id"), table_name="lots_plantings")
    op.drop_index(op.f("ix_lots_plantings_plot_id"), table_name="lots_plantings")
    op.drop_index(op.f("ix_lots_plantings_org_id"), table_name="lots_plantings")
    op.drop_table("lots_plantings")
    op.drop_index(op.f("ix_lots_links_parent_id"), table_name="lots_links")
    op.drop_index(op.f("ix_lots_links_event_id"), table_name="lots_links")
    op.drop_index(op.f("ix_lots_links_child_id"), table_name="lots_links")
    op.drop_table("lots_links")
    op.drop_index(op.f("ix_lots_findings_lot_id"), table_name="lots_findings")
    op.drop_index(op.f("ix_lots_findings_event_id"), table_name="lots_findings")
    op.drop_table("lots_findings")
    op.drop_index(op.f("ix_lots_event_lots_lot_id"), table_name="lots_event_lots")
    op.drop_table("lots_event_lots")
    op.drop_index("ix_epcis_events_time", table_name="epcis_events")
    op.drop_index(op.f("ix_epcis_events_org_id"), table_name="epcis_events")
    op.drop_index(op.f("ix_epcis_events_lot_event_id"), table_name="epcis_events")
    op.drop_index(op.f("ix_epcis_events_event_type"), table_name="epcis_events")
    op.drop_index(op.f("ix_epcis_events_biz_step"), table_name="epcis_events")
    op.drop_index(op.f("ix_epcis_events_biz_location"), table_name="epcis_events")
    op.drop_table("epcis_events")
    op.drop_index("ix_lots_events_type_time", table_name="lots_events")
    op.drop_index(op.f("ix_lots_events_plot_id"), table_name="lots_events")
    op.drop_index(op.f("ix_lots_events_org_id"), table_name="lots_events")
    op.drop_index(op.f("ix_lots_events_lot_id"), table_name="lots_events")
    op.drop_index(op.f("ix_lots_events_event_time"), table_name="lots_events")
    op.drop_index(op.f("ix_lots_events_corrects_id"), table_name="lots_events")
    op.drop_table("lots_events")
    op.drop_index(op.f("ix_lots_lots_plot_id"), table_name="lots_lots")
    op.drop_index(op.f("ix_lots_lots_org_id"), table_name="lots_lots")
    op.drop_index(op.f("ix_lots_lots_holder_org_id"), table_name="lots_lots")
    op.drop_index(op.f("ix_lots_lots_herb_id"), table_name="lots_lots")
    op.drop_index(op.f("ix_lots_lots_form_id"), table_name="lots_lots")
    op.drop_table("lots_lots")
    op.drop_index(op.f("ix_epcis_captures_org_id"), table_name="epcis_captures")
    op.drop_table("epcis_captures")
