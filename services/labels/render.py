"""QR images and printable sheets. The only module that imports qrcode."""

from __future__ import annotations

import functools
import io
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import qrcode
import qrcode.base
import qrcode.image.svg
import qrcode.util
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


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where a QR version puts its modules, as qrcode draws them while it scores masks (format and version
    areas light). A code's modules are handled as one string or integer of its n rows followed by its
    n columns (2n lines of n modules, module (r, c) of a row at bit (2n - 1 - r) * n + n - 1 - c)."""

    size: int
    gather: Callable[[str], tuple[str, ...]]  # "01" + data bits -> the 2n lines (function modules: "0"/"1")
    data_bits: int  # data modules in the code
    function: int  # the test-drawn function modules, packed
    masks: tuple[int, ...]  # per mask: the data modules it inverts, packed
    same: int  # bits j where modules j and j + 1 lie in one line
    starts: int  # bits j where the 11 modules from j down lie in one line
    blocks: int  # bits j of the rows where (j, j + 1) and the same pair in the next row lie in the code
    rows: int  # the n rows' bits


def _packed(n: int, cells: Sequence[tuple[int, int]]) -> int:
    total = 2 * n * n
    value = 0
    for r, c in cells:
        value |= 1 << (total - 1 - (r * n + c))
        value |= 1 << (total - 1 - (n * n + c * n + r))
    return value


@functools.lru_cache(maxsize=MAX_VERSION + 1)
def _layout(version: int) -> _Layout:
    """Built with qrcode's own drawing steps (those of `QRCode.makeImpl(test=True, ...)`), once a version."""
    probe = qrcode.QRCode(version=version)
    n = probe.modules_count = version * 4 + 17
    probe.modules = [[None] * n for _ in range(n)]
    probe.setup_position_probe_pattern(0, 0)
    probe.setup_position_probe_pattern(n - 7, 0)
    probe.setup_position_probe_pattern(0, n - 7)
    probe.setup_position_adjust_pattern()
    probe.setup_timing_pattern()
    probe.setup_type_info(True, 0)
    if version >= 7:
        probe.setup_type_number(True)
    grid = probe.modules
    order: list[tuple[int, int]] = []  # the walk of `QRCode.map_data`: two-column strips, up then down
    row, step = n - 1, -1
    for right in range(n - 1, 0, -2):
        col = right - 1 if right <= 6 else right
        while True:
            order.extend((row, c) for c in (col, col - 1) if grid[row][c] is None)
            row += step
            if row < 0 or row >= n:
                row -= step
                step = -step
                break
    index = {cell: 2 + k for k, cell in enumerate(order)}
    lines = [[(r, c) for c in range(n)] for r in range(n)] + [[(r, c) for r in range(n)] for c in range(n)]
    gather = operator.itemgetter(
        *(index.get((r, c), 1 if grid[r][c] else 0) for line in lines for r, c in line)
    )
    dark = [(r, c) for r in range(n) for c in range(n) if grid[r][c]]
    masks = tuple(_packed(n, [cell for cell in order if qrcode.util.mask_func(m)(*cell)]) for m in range(8))
    span = 2 * n
    same = sum(((1 << (n - 1)) - 1) << (k * n) for k in range(span))
    starts = sum(((1 << (n - 10)) - 1) << (k * n) for k in range(span))
    rows = ((1 << (n * n)) - 1) << (n * n)
    blocks = sum(((1 << (n - 1)) - 1) << (k * n) for k in range(n, span - 1))
    return _Layout(n, gather, len(order), _packed(n, dark), masks, same, starts, blocks, rows)


_FINDERS = (0b10111010000, 0b00001011101)  # 1:1:3:1:1 beside 4 light modules, both ways


def _penalty(modules: int, layout: _Layout) -> int:
    """ISO/IEC 18004 mask penalty of a packed code, scored as `qrcode.util.lost_point` scores it (same
    rules, same sums), with whole-code integer operations instead of loops over modules."""
    n = layout.size
    light = ~modules
    same = ~(modules ^ (modules >> 1)) & layout.same  # a module equal to the next one in its line
    runs = same & (same >> 1) & (same >> 2) & (same >> 3)  # 5 equal modules in a line
    points = runs.bit_count() + 2 * (runs & ~(runs << 1)).bit_count()  # a run of L >= 5 costs L - 2
    for finder in _FINDERS:
        found = layout.starts
        for k in range(11):
            found &= (modules if (finder >> k) & 1 else light) >> k
        points += 40 * found.bit_count()
    level = ~(modules ^ (modules >> n))  # module equal to the one below it (rows part only)
    points += 3 * (level & (level >> 1) & same & layout.blocks).bit_count()  # 2x2 blocks of one colour
    dark = (modules & layout.rows).bit_count()
    percent = float(dark) / (n**2)
    return points + int(abs(percent * 100 - 50) / 5) * 10


class _Bits:
    """An integer-backed stand-in for `qrcode.util.BitBuffer` (which appends one bit per call)."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def put(self, num: int, length: int) -> None:
        self.value = (self.value << length) | (num & ((1 << length) - 1))
        self.length += length


@functools.lru_cache(maxsize=64)
def _generator_multiples(ec_count: int) -> tuple[int, ...]:
    """For each byte f: f times the Reed-Solomon generator's coefficients after its leading 1, as one
    integer of `ec_count` bytes (a remainder step is then a shift and one XOR)."""
    poly = qrcode.base.Polynomial([1], 0)
    for i in range(ec_count):
        poly = poly * qrcode.base.Polynomial([1, qrcode.base.gexp(i)], 0)
    logs = [qrcode.base.LOG_TABLE[c] for c in list(poly)[1:]]
    exp, log = qrcode.base.EXP_TABLE, qrcode.base.LOG_TABLE
    table = [0]
    for f in range(1, 256):
        table.append(int.from_bytes(bytes(exp[(g + log[f]) % 255] for g in logs), "big"))
    return tuple(table)


def create_data(version: int, error_correction: int, data_list: Sequence[qrcode.util.QRData]) -> list[int]:
    """`qrcode.util.create_data` (data bits, terminator, padding, Reed-Solomon blocks, interleaving) with
    integer bit strings and table-driven division instead of bit-by-bit buffers and polynomial objects;
    the same codewords."""
    bits = _Bits()
    for chunk in data_list:
        bits.put(chunk.mode, 4)
        bits.put(len(chunk), qrcode.util.length_in_bits(chunk.mode, version))
        chunk.write(bits)
    blocks = qrcode.base.rs_blocks(version, error_correction)
    limit = sum(block.data_count * 8 for block in blocks)
    if bits.length > limit:
        raise DataOverflowError(f"Code length overflow. Data size ({bits.length}) > size available ({limit})")
    bits.put(0, min(limit - bits.length, 4))  # terminator
    bits.put(0, -bits.length % 8)
    codewords = list(bits.value.to_bytes(bits.length // 8, "big"))
    codewords += [qrcode.util.PAD0, qrcode.util.PAD1] * ((limit // 8 - len(codewords)) // 2 + 1)
    data_blocks: list[list[int]] = []
    ec_blocks: list[list[int]] = []
    offset = 0
    for block in blocks:
        data = codewords[offset : offset + block.data_count]
        offset += block.data_count
        ec_count = block.total_count - block.data_count
        multiples = _generator_multiples(ec_count)
        top, full = 8 * (ec_count - 1), (1 << (8 * ec_count)) - 1
        remainder = 0
        for byte in data:  # long division by the generator, one codeword at a time
            remainder = ((remainder << 8) & full) ^ multiples[byte ^ (remainder >> top)]
        data_blocks.append(data)
        ec_blocks.append(list(remainder.to_bytes(ec_count, "big")))
    out: list[int] = []
    for group in (data_blocks, ec_blocks):
        for i in range(max(len(b) for b in group)):
            out.extend(b[i] for b in group if i < len(b))
    return out


def _placed(code: qrcode.QRCode) -> tuple[_Layout, int]:
    """The code's data modules, unmasked, over the test-drawn function patterns, packed."""
    layout = _layout(code.version)
    if code.data_cache is None:
        code.data_cache = create_data(code.version, code.error_correction, code.data_list)
    bits = "".join(format(byte, "08b") for byte in code.data_cache)[: layout.data_bits]
    # modules past the data stay light (the remainder bits)
    return layout, int("".join(layout.gather("01" + bits.ljust(layout.data_bits, "0"))), 2)


def _choose(layout: _Layout, modules: int) -> int:
    scores = [_penalty(modules ^ mask, layout) for mask in layout.masks]
    return scores.index(min(scores))  # the first of equals, as qrcode's `best_mask_pattern`


def best_mask(code: qrcode.QRCode) -> int:
    """The mask qrcode's `best_mask_pattern` would choose (lowest penalty, first on ties), scored on
    integers instead of qrcode's module lists; requires `code.version` set. Caches the code's data."""
    return _choose(*_placed(code))


@functools.lru_cache(maxsize=8 * 4 * (MAX_VERSION + 1))
def _function_rows(version: int, error_correction: int, mask: int) -> tuple[int, ...]:
    """Dark function modules of a finished code (format and version information included), per row, drawn
    by qrcode's own steps (those of `QRCode.makeImpl(test=False, mask)`)."""
    probe = qrcode.QRCode(version=version, error_correction=error_correction)
    n = probe.modules_count = version * 4 + 17
    probe.modules = [[None] * n for _ in range(n)]
    probe.setup_position_probe_pattern(0, 0)
    probe.setup_position_probe_pattern(n - 7, 0)
    probe.setup_position_probe_pattern(0, n - 7)
    probe.setup_position_adjust_pattern()
    probe.setup_timing_pattern()
    probe.setup_type_info(False, mask)
    if version >= 7:
        probe.setup_type_number(False)
    return tuple(sum(1 << (n - 1 - c) for c, dark in enumerate(row) if dark) for row in probe.modules)


def matrix_rows(uri: str, level: Level) -> tuple[int, list[int]]:
    """The finished code (qrcode's matrix for the mask qrcode would choose, without the border) as one
    integer per row, bit (size - 1 - column) dark: (size, rows)."""
    code = _fitted(uri, level)
    layout, modules = _placed(code)
    mask = _choose(layout, modules)
    n = layout.size
    data = (modules ^ layout.function ^ layout.masks[mask]) >> (n * n)  # the rows' data modules
    function = _function_rows(code.version, code.error_correction, mask)
    return n, [f | ((data >> ((n - 1 - r) * n)) & ((1 << n) - 1)) for r, f in enumerate(function)]


def _code(uri: str, level: Level) -> qrcode.QRCode:
    code = _fitted(uri, level)
    code.mask_pattern = best_mask(code)  # what qrcode would choose, without its slow scoring
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


_GREY = str.maketrans("01", "\xff\x00")


def _matrix_image(uri: str, level: Level, border: int = 4) -> bytes:
    """The code as a 1-byte-per-module grey image (0 = dark), border included; picklable for worker
    processes."""
    n, rows = matrix_rows(uri, level)
    quiet = "0" * border
    text = "".join(quiet + format(row, f"0{n}b") + quiet for row in rows)
    margin = "0" * ((n + 2 * border) * border)
    return (margin + text + margin).translate(_GREY).encode("latin-1")


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
