"""Label use cases: issue signed labels, void them, look them up."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlmodel import Session, select

from ledger.entry import Draft
from ledger.log import Log
from services.access import require_org_write, require_role
from services.catalog.service import require_form
from services.errors import GoneError, NotFoundError
from services.labels.models import IssueIn, Label, LabelPublic
from services.labels.render import Level, qr_version
from services.labels.rules import LabelSigner, label_path, sign_label
from services.ledger.service import append_entries
from services.registry.models import Principal
from services.registry.service import require_org

ISSUERS = frozenset({"admin", "grower", "processor"})
# Crockford base32 without I, L, O, U: unguessable serials that survive being read aloud or retyped.
SERIAL_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SERIAL_LENGTH = 10


def new_serial() -> str:
    """A random 50-bit serial: nobody can enumerate or predict the labels of a sheet."""
    return "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(SERIAL_LENGTH))


def issue_labels(
    session: Session,
    log: Log,
    principal: Principal,
    data: IssueIn,
    *,
    signer: LabelSigner,
    base_url: str,
    now: datetime,
) -> list[Label]:
    """Pre-issue `count` signed unit labels for a form; one ledger entry commits to all their URIs."""
    require_role(principal, ISSUERS, "issuing labels")
    org_id = data.org_id or principal.org_id
    require_org_write(principal, org_id)
    require_org(session, org_id)
    form = require_form(session, data.form)
    level: Level = "Q" if data.kind == "field" else "M"
    labels: list[Label] = []
    for _ in range(data.count):
        serial = new_serial()
        uri = sign_label(base_url, label_path(form.gtin, serial=serial), [], signer.key_id, signer.key)
        qr_version(uri, level)
        labels.append(
            Label(
                gtin=form.gtin,
                serial=serial,
                form_id=form.id,
                org_id=org_id,
                kind=data.kind,
                key_id=signer.key_id,
                uri=uri,
                issued_at=now,
            )
        )
    digest = hashlib.sha256("\n".join(label.uri for label in labels).encode()).hexdigest()
    body = {
        "form": form.id,
        "gtin": form.gtin,
        "org": org_id,
        "count": len(labels),
        "kind": data.kind,
        "key": signer.key_id,
        "uris_sha256": digest,
    }
    [entry] = append_entries(session, log, [Draft.of("labels.issued", now, principal.actor, body)])
    for label in labels:
        label.ledger_index = entry.index
        session.add(label)
    session.flush()
    return labels


def find_label(session: Session, gtin: str, serial: str) -> Label:
    """The label with that GTIN and serial; NotFoundError when we never issued it."""
    label: Label | None = (
        session.execute(select(Label).where(Label.gtin == gtin, Label.serial == serial)).scalars().first()
    )
    if label is None:
        raise NotFoundError(f"no label {gtin}/{serial} was issued here", field="serial")
    return label


def void_label(
    session: Session, log: Log, principal: Principal, gtin: str, serial: str, reason: str, *, now: datetime
) -> LabelPublic:
    """Void a label (lost, damaged, misprinted); recorded on the ledger, never deleted."""
    require_role(principal, ISSUERS, "voiding labels")
    label = find_label(session, gtin, serial)
    require_org_write(principal, label.org_id)
    if label.status == "voided":
        raise GoneError(f"label {serial} is already voided", field="serial")
    label.status, label.voided_at, label.void_reason = "voided", now, reason
    body = {"gtin": gtin, "serial": serial, "reason": reason, "lot": label.lot_code}
    [entry] = append_entries(
        session, log, [Draft.of("labels.voided", now, principal.actor, body, lot=label.lot_code)]
    )
    label.ledger_index = entry.index
    session.add(label)
    session.flush()
    return LabelPublic.model_validate(label, from_attributes=True)
