"""QR images and printable sheets. The only module that imports qrcode."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M, ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError

from services.errors import InvalidInputError

MAX_VERSION = 10
Level = Literal["M", "Q"]
_LEVELS = {"M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q}


@dataclass(frozen=True, slots=True)
class SheetLabel:
    """One code on a sheet with the human-readable lines printed under it."""

    uri: str
    lines: tuple[str, ...]


def _fitted(uri: str, level: Level) -> qrcode.QRCode:
    """A QR code holding `uri` at its smallest version (InvalidInputError above MAX_VERSION).

    Only the version is fitted here (cheap: no matrix, no mask evaluation), so issuing thousands of labels
    checks each URI in well under a millisecond; the images build their matrix afterwards.
    """
    code = qrcode.QRCode(error_correction=_LEVELS[level], border=4, box_size=8)
    code.add_data(uri, optimize=0)
    try:
        version: int = code.best_fit()
    except DataOverflowError:
        version = 41
    if version > MAX_VERSION:
        raise InvalidInputError(
            f"label URI of {len(uri)} characters needs QR version {version} at error correction {level};"
            f" at most {MAX_VERSION} is allowed: shorten DAODI_PUBLIC_BASE_URL, the lot or the serial",
            field="uri",
        )
    return code


def _code(uri: str, level: Level) -> qrcode.QRCode:
    code = _fitted(uri, level)
    code.make(fit=False)
    return code


def qr_version(uri: str, level: Level) -> int:
    """QR version the URI needs at that error-correction level (InvalidInputError above 10)."""
    version: int = _fitted(uri, level).version
    return version


def png(uri: str, level: Level) -> bytes:
    """PNG image of the QR code."""
    buf = io.BytesIO()
    _code(uri, level).make_image().save(buf)
    return buf.getvalue()


def svg(uri: str, level: Level) -> bytes:
    """SVG image of the QR code (paths, no external references)."""
    buf = io.BytesIO()
    _code(uri, level).make_image(image_factory=qrcode.image.svg.SvgPathImage).save(buf)
    return buf.getvalue()


def _matrix_image(uri: str, level: Level) -> bytes:
    """The code as a 1-bit-per-byte grey image (0 = dark), border included; picklable for worker processes."""
    matrix = _code(uri, level).get_matrix()
    return bytes(0 if dark else 255 for row in matrix for dark in row)


def sheet_pdf(labels: Sequence[SheetLabel], level: Level, title: str) -> bytes:
    """A4 sheets, 4 x 6 codes per page, with the text lines under each code (Chinese via a CID font)."""
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    from PIL import Image
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    # A standard CID font: the PDF names it, viewers supply it, nothing is downloaded or embedded.
    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    pdf.setTitle(title)
    cols, rows = 4, 6
    width, height = A4
    cell_w, cell_h = (width - 20 * mm) / cols, (height - 24 * mm) / rows
    size = min(cell_w, cell_h) - 14 * mm
    uris = [label.uri for label in labels]
    if len(uris) > 64:
        # Choosing each code's mask is CPU-bound pure Python: spread it over the cores.
        with ProcessPoolExecutor() as pool:
            images = list(pool.map(partial(_matrix_image, level=level), uris, chunksize=32))
    else:
        images = [_matrix_image(uri, level) for uri in uris]
    for n, (label, pixels) in enumerate(zip(labels, images, strict=True)):
        slot = n % (cols * rows)
        if n and slot == 0:
            pdf.showPage()
        if slot == 0:
            pdf.setFont("STSong-Light", 9)
            pdf.drawString(10 * mm, height - 10 * mm, title)
        col, row = slot % cols, slot // cols
        x = 10 * mm + col * cell_w + (cell_w - size) / 2
        y = height - 16 * mm - (row + 1) * cell_h + 12 * mm
        side = int(len(pixels) ** 0.5)
        image = Image.frombytes("L", (side, side), pixels)
        pdf.drawImage(ImageReader(image), x, y, size, size)
        pdf.setFont("STSong-Light", 7)
        for i, line in enumerate(label.lines):
            pdf.drawCentredString(x + size / 2, y - (i + 1) * 3.2 * mm, line)
    pdf.save()
    return buf.getvalue()
