"""`daodi verify-label` beyond the signature: fetch (or read) the lot's proof bundle and verify it offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.labels.rules import LabelError, parse_label
from services.verify.rules import BundleError, verify_bundle


def _get_json(url: str, **headers: str) -> Any:
    import httpx

    response = httpx.get(url, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


def verify_label_bundle(
    uri: str, *, url: str | None = None, keys_file: str | None = None, bundle_file: str | None = None
) -> dict[str, Any]:
    """Check a label URI's signature and its lot's proof bundle against the published keys; returns a
    JSON-able verdict with `ok`. Keys and bundle come from files when given (fully offline), else from the
    label's own server (or `url`)."""
    try:
        label = parse_label(uri)
        base = (url or label.base).rstrip("/")
        keys = json.loads(Path(keys_file).read_text()) if keys_file else _get_json(base + "/api/v1/keys")
        if bundle_file:
            bundle = json.loads(Path(bundle_file).read_text())
        else:
            lot = label.lot
            if lot is None:  # a unit label: ask the resolver which lot it is bound to
                lot = _get_json(base + label.message.split("?", 1)[0], accept="application/json").get("lot")
            if lot is None:
                return {"uri": uri, "ok": False, "reason": "the label is not bound to a lot (not activated)"}
            bundle = _get_json(f"{base}/api/v1/verify/{lot}/bundle")
        bundle = {**bundle, "label": uri}
        verdict = verify_bundle(bundle, keys)
    except (LabelError, BundleError, OSError, ValueError) as exc:
        return {"uri": uri, "ok": False, "reason": str(exc)}
    except Exception as exc:  # httpx errors: the server could not be asked
        return {"uri": uri, "ok": False, "reason": f"could not fetch: {exc}"}
    return {
        "uri": uri,
        "ok": True,
        "signature": "valid",
        "lot": verdict.lot,
        "events_proven": verdict.entries,
        "checkpoint_size": verdict.checkpoint_size,
        "witness_cosignatures": verdict.witnesses,
    }
