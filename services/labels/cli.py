"""`daodi labels issue` and `daodi verify-label`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, col, select

from services.errors import DomainError, NotFoundError
from services.labels import render, service
from services.labels.models import IssueIn
from services.labels.rules import LabelError, verify_label
from services.registry.models import Organisation, Principal, User
from services.settings import Settings


def _operator(session: Session, uscc: str | None) -> Principal:
    """Act as an admin of the given organisation (default: the platform operator)."""
    query = select(Organisation).where(
        Organisation.uscc == uscc if uscc else col(Organisation.kind) == "operator"
    )
    org = session.execute(query).scalars().first()
    if org is None or org.id is None:
        raise NotFoundError("no such organisation; run `daodi demo` once or register the operator first")
    user = (
        session.execute(select(User).where(User.org_id == org.id, col(User.active).is_(True)))
        .scalars()
        .first()
    )
    if user is None or user.id is None:
        raise NotFoundError(f"organisation {org.uscc} has no active user to act for")
    return Principal(user_id=user.id, org_id=org.id, roles=frozenset(user.roles))


def issue_command(*, herb: str, form: str, count: int, out: str, kind: str, org: str | None) -> int:
    """Issue labels, write DIR/sheet.pdf plus one PNG and SVG per label, print the URIs."""
    from services.catalog.service import require_form, require_herb
    from services.context import build_context

    ctx = build_context(Settings())
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    try:
        with Session(ctx.engine) as session:
            herb_row = require_herb(session, herb)
            form_row = require_form(session, form)
            if form_row.herb_id != herb_row.id:
                print(f"daodi: form {form} is not a form of {herb}", file=sys.stderr)
                return 2
            labels = service.issue_labels(
                session,
                ctx.log,
                _operator(session, org),
                IssueIn.model_validate({"form": form, "count": count, "kind": kind}),
                signer=ctx.keys.label_signer,
                base_url=ctx.settings.public_base_url,
                now=datetime.now(UTC),
            )
            session.commit()
            level: render.Level = "Q" if kind == "field" else "M"
            for label in labels:
                (target / f"{label.serial}.png").write_bytes(render.png(label.uri, level))
                (target / f"{label.serial}.svg").write_bytes(render.svg(label.uri, level))
            sheet = [
                render.SheetLabel(
                    label.uri, (f"{herb_row.name_zh} {form_row.name_zh}", f"serial {label.serial}")
                )
                for label in labels
            ]
            title = f"{herb_row.name_zh} {form_row.name_zh} · {form_row.gtin} · {len(labels)}"
            (target / "sheet.pdf").write_bytes(render.sheet_pdf(sheet, level, title))
            for label in labels:
                print(label.uri)
    except DomainError as exc:
        print(f"daodi: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        ctx.stop()
    return 0


def read_qr(path: Path) -> str:
    """Decode the one QR code in an image file."""
    import zxingcpp
    from PIL import Image

    results = zxingcpp.read_barcodes(Image.open(path))
    if not results:
        raise LabelError(f"no QR code found in {path}")
    text: str = results[0].text
    return text


def verify_command(
    target: str, *, url: str | None, keys_file: str | None, bundle_file: str | None = None
) -> int:
    """Check a label's signature offline with the published keys; print a JSON verdict."""
    try:
        uri = read_qr(Path(target)) if Path(target).is_file() else target
        if keys_file:
            published = json.loads(Path(keys_file).read_text())
        else:
            import httpx

            from services.labels.rules import parse_label

            base = url or parse_label(uri).base
            published = httpx.get(base.rstrip("/") + "/api/v1/keys", timeout=10).json()
        import base64

        keys = {k: base64.b64decode(v) for k, v in published.get("labels", {}).items()}
        label = verify_label(uri, keys)
    except (LabelError, OSError, ValueError) as exc:
        print(json.dumps({"uri": target, "signature": "invalid", "reason": str(exc)}, ensure_ascii=False))
        return 1
    verdict = {
        "uri": uri,
        "signature": "valid",
        "key": label.key_id,
        "gtin": label.gtin,
        "lot": label.lot,
        "serial": label.serial,
    }
    if bundle_file is not None or keys_file is None:
        # Beyond the signature (online, or with a saved bundle): the lot's proof bundle, every event's
        # inclusion under a cosigned checkpoint.
        from services.verify.cli import verify_label_bundle

        verdict |= verify_label_bundle(uri, url=url, keys_file=keys_file, bundle_file=bundle_file)
    print(json.dumps(verdict, ensure_ascii=False))
    return 0 if verdict.get("ok", True) else 1
