"""Labels: Digital Link URIs, signatures, QR images that decode to exactly the URI, issuing, voiding."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from PIL import Image

from services.app import create_app
from services.catalog.rules import gtin_check_digit
from services.errors import InvalidInputError
from services.labels import render
from services.labels.rules import LabelError, label_path, parse_label, sign_label, verify_label
from services.settings import Settings

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = {"1": KEY.public_key().public_bytes_raw()}
GTIN = "06901234000016"  # the architecture example with its check digit corrected (…19 fails it)


def signed(path: str, attrs: list[tuple[str, str]] | None = None) -> str:
    return sign_label("https://trace.example", path, attrs or [], "1", KEY)


@pytest.mark.parametrize(
    ("body", "digit"), [("0690123400001", 6), ("0000000000000", 0), ("0400638133393", 1)]
)
def test_gtin_check_digit_uses_weights_3_1_from_the_right(body: str, digit: int) -> None:
    assert gtin_check_digit(body) == digit


def test_the_signature_covers_path_and_query_without_s() -> None:
    uri = signed(label_path(GTIN, lot="QS24H0007"), [("7007", "240612")])
    assert uri.startswith("https://trace.example/01/06901234000016/10/QS24H0007?7007=240612&k=1&s=")
    label = verify_label(uri, PUBLIC)
    assert label.message == "/01/06901234000016/10/QS24H0007?7007=240612&k=1"
    assert (label.lot, label.serial, label.level, label.attribute("7007")) == (
        "QS24H0007",
        None,
        "lot",
        "240612",
    )


def test_changing_any_character_of_a_label_fails_verification() -> None:
    uri = signed(label_path(GTIN, lot="QS24H0007", serial="A1B2C3D4E5"), [("7007", "240612")])
    start = len("https://trace.example")
    for i in range(start, len(uri)):
        for replacement in ("0", "Z"):
            if uri[i] == replacement:
                continue
            altered = uri[:i] + replacement + uri[i + 1 :]
            with pytest.raises(LabelError):
                verify_label(altered, PUBLIC)


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://x/01/06901234000016?k=1&s=AAAA",
        "https://x/02/06901234000019?k=1&s=AAAA",
        "https://x/01/06901234000013?k=1&s=" + "A" * 86,
        "https://x/01/06901234000016/10/QS24H000712345678901234?k=1&s=" + "A" * 86,
        "https://x/01/06901234000016/10/夏枯草?k=1&s=" + "A" * 86,
        "https://x/01/06901234000016?s=" + "A" * 86 + "&k=1",
        "https://x/01/06901234000016?k=1&s=" + "A" * 80,
        "https://x/01/06901234000016?k=9&s=" + "A" * 86,
    ],
)
def test_malformed_or_unknown_key_labels_are_rejected(uri: str) -> None:
    with pytest.raises(LabelError):
        verify_label(uri, PUBLIC)


def test_bad_codes_are_refused_when_building_paths() -> None:
    with pytest.raises(LabelError):
        label_path(GTIN, lot="批号1")
    with pytest.raises(LabelError):
        label_path("06901234000018")


@pytest.mark.parametrize(("level", "fmt"), [("Q", "png"), ("M", "png"), ("Q", "svg")])
def test_qr_images_decode_to_exactly_the_issued_uri(level: render.Level, fmt: str) -> None:
    uri = (
        "http://127.0.0.1:8000"
        + signed(label_path(GTIN, serial="7KQ2M9XW4T"))[len("https://trace.example") :]
    )
    assert render.qr_version(uri, level) <= 10
    if fmt == "png":
        image = Image.open(io.BytesIO(render.png(uri, level)))
    else:
        svg = render.svg(uri, level).decode()
        assert "<svg" in svg and "http" not in svg.split("<path", 1)[0].replace("http://www.w3.org", "")
        return
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [uri]


def test_a_uri_too_long_for_version_10_is_refused() -> None:
    long_base = "https://" + "a" * 60 + ".example"
    uri = sign_label(
        long_base, label_path(GTIN, lot="QS24H0007", serial="7KQ2M9XW4T"), [("7007", "240612")], "1", KEY
    )
    with pytest.raises(Exception, match="version"):
        render.qr_version(uri, "Q")


@pytest.fixture
def admin(settings: Settings) -> tuple[TestClient, dict[str, str]]:
    from sqlmodel import Session

    app = create_app(settings)
    with Session(app.state.ctx.engine) as session:
        _, _, token = _bootstrap(session)
        session.commit()
    return TestClient(app), {"Authorization": f"Bearer {token}"}


def _bootstrap(session):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from services.registry.rules import uscc_check_character
    from services.registry.service import bootstrap_admin

    first17 = "91411725MA44ABCD0"
    return bootstrap_admin(
        session,
        uscc=first17 + uscc_check_character(first17),
        org_name="道地溯源平台",
        user_name="ops",
        now=datetime.now(UTC),
    )


def test_issued_labels_verify_with_the_published_key_and_can_be_voided(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = admin
    response = client.post("/api/v1/labels", json={"form": "prunella.fresh", "count": 3}, headers=auth)
    assert response.status_code == 201, response.text
    labels = response.json()
    keys = {k: base64.b64decode(v) for k, v in client.get("/api/v1/keys").json()["labels"].items()}
    for item in labels:
        label = verify_label(item["uri"], keys)
        assert label.serial == item["serial"] and item["status"] == "issued"
        assert item["ledger_index"] is not None
    serial, gtin = labels[0]["serial"], labels[0]["gtin"]
    png = client.get(f"/api/v1/labels/{gtin}/{serial}/qr")
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png.content)))] == [labels[0]["uri"]]
    voided = client.post(f"/api/v1/labels/{gtin}/{serial}/void", json={"reason": "torn"}, headers=auth)
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    again = client.post(f"/api/v1/labels/{gtin}/{serial}/void", json={"reason": "torn"}, headers=auth)
    assert again.status_code == 410 and again.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"form": "nope.fresh", "count": 3}, 422, "form"),
        ({"form": "prunella.fresh", "count": 0}, 400, "count"),
        ({"form": "prunella.fresh", "count": 3, "kind": "crate"}, 400, "kind"),
    ],
)
def test_bad_issue_requests_name_the_field(
    admin: tuple[TestClient, dict[str, str]], body: dict[str, object], status: int, field: str
) -> None:
    client, auth = admin
    response = client.post("/api/v1/labels", json=body, headers=auth)
    assert response.status_code == status and response.json()["field"] == field


def test_issuing_needs_an_api_key(admin: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = admin
    assert client.post("/api/v1/labels", json={"form": "prunella.fresh", "count": 1}).status_code == 401


def test_cli_issues_a_sheet_and_verify_label_checks_png_and_uri(settings: Settings, tmp_path: Path) -> None:
    from sqlmodel import Session

    app = create_app(settings)
    with Session(app.state.ctx.engine) as session:
        _bootstrap(session)
        session.commit()
    keys_json = tmp_path / "keys.json"
    with TestClient(app) as client:
        keys_json.write_text(json.dumps(client.get("/api/v1/keys").json()))
    app.state.ctx.stop()
    env = {
        "DAODI_DATABASE_URL": settings.database_url,
        "DAODI_KEY_DIR": str(settings.key_dir),
        "DAODI_PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        "PATH": "/usr/bin:/bin",
    }
    out = tmp_path / "sheet"
    run = [sys.executable, "-m", "services.cli"]
    issued = subprocess.run(
        [
            *run,
            "labels",
            "issue",
            "--herb",
            "prunella",
            "--form",
            "prunella.fresh",
            "--count",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    uris = issued.stdout.split()
    assert len(uris) == 4 and (out / "sheet.pdf").read_bytes().startswith(b"%PDF")
    serial = parse_label(uris[0]).serial
    good = subprocess.run(
        [*run, "verify-label", str(out / f"{serial}.png"), "--keys", str(keys_json)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert good.returncode == 0 and json.loads(good.stdout)["signature"] == "valid"
    forged = uris[1].replace(parse_label(uris[1]).serial or "", "ZZZZZZZZZZ")
    bad = subprocess.run(
        [*run, "verify-label", forged, "--keys", str(keys_json)], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1 and json.loads(bad.stdout)["signature"] == "invalid"


def test_labels_for_an_unknown_organisation_are_refused_not_a_database_error(
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = admin
    body = {"form": "prunella.fresh", "count": 1, "org_id": 999}
    response = client.post("/api/v1/labels", json=body, headers=auth)
    assert response.status_code == 422 and response.json()["rule"] == "registry.unknown-org"
    response = client.post("/api/v1/labels", json={**body, "org_id": 2**31}, headers=auth)
    assert response.status_code == 400 and response.json()["field"] == "org_id"
    response = client.post("/api/v1/labels", json={"form": "a\u0000b", "count": 1}, headers=auth)
    assert response.status_code == 400 and response.json()["field"] == "form"


def test_checking_the_qr_version_builds_no_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    import qrcode

    # Building the matrix (and choosing its mask) is what made issuing thousands of labels slow.
    def no_matrix(*args: object, **kwargs: object) -> None:
        raise AssertionError("qr_version built a QR matrix")

    monkeypatch.setattr(qrcode.QRCode, "makeImpl", no_matrix)
    uri = signed(label_path(GTIN, serial="7KQ2M9XW4T"))
    assert render.qr_version(uri, "Q") <= 10


def _sample_uris() -> list[tuple[str, render.Level]]:
    """Label URIs of every shape we issue (lot, unit, lot+unit, signed or not, two hosts), both levels."""
    import random
    import string

    rng = random.Random(18004)
    out: list[tuple[str, render.Level]] = []
    for i in range(48):
        serial = "".join(rng.choices(string.ascii_uppercase + string.digits, k=rng.randint(1, 12)))
        lot = "".join(rng.choices(string.ascii_uppercase + string.digits, k=rng.randint(1, 10)))
        paths = [label_path(GTIN, serial=serial), label_path(GTIN, lot=lot), label_path(GTIN, lot, serial)]
        base = ("http://127.0.0.1:8000", "https://trace.example")[i % 2]
        uri = sign_label(base, paths[i % 3], [], "1", KEY) if i % 4 else base + paths[i % 3]
        level: render.Level = "Q" if i % 5 else "M"
        try:
            render.qr_version(uri, level)
        except InvalidInputError:  # longer than version 10 allows: issuing refuses it
            continue
        out.append((uri, level))
    assert len(out) > 30
    return out


def test_chosen_mask_is_the_one_qrcode_would_choose() -> None:
    for uri, level in _sample_uris():
        ours = render._fitted(uri, level)
        theirs = render._fitted(uri, level)
        assert render.best_mask(ours) == theirs.best_mask_pattern(), uri


def test_codewords_and_matrix_equal_qrcode_own() -> None:
    from qrcode import util

    for uri, level in _sample_uris()[:24]:
        code = render._fitted(uri, level)
        assert render.create_data(code.version, code.error_correction, code.data_list) == util.create_data(
            code.version, code.error_correction, code.data_list
        )
        code.make(fit=False)  # qrcode's own mask choice and drawing
        n, rows = render.matrix_rows(uri, level)
        assert [[bool(row >> (n - 1 - c) & 1) for c in range(n)] for row in rows] == code.modules


def test_sheet_codes_and_pngs_decode_to_exactly_their_uri() -> None:
    for uri, level in _sample_uris()[::6]:
        assert [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(render.png(uri, level))))] == [
            uri
        ]
        pixels = render._matrix_image(uri, level)
        side = int(len(pixels) ** 0.5)
        sheet_image = Image.frombytes("L", (side, side), pixels).resize((side * 4, side * 4), Image.NEAREST)
        assert [r.text for r in zxingcpp.read_barcodes(sheet_image)] == [uri]


def test_a_sheet_holds_every_code_and_its_chinese_text() -> None:
    uris = [uri for uri, level in _sample_uris() if level == "Q"]
    labels = [render.SheetLabel(uri, ("夏枯草 饮片", f"label {i}")) for i, uri in enumerate(uris)]
    pdf = render.sheet_pdf(labels, "Q", "测试 sheet")
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Subtype /Image") == len(labels)
    assert pdf.count(b"STSong-Light") >= 1
