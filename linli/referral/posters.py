"""Share posters, drawn on the server with Pillow: product photo, name, live price, the share line, the
neighbour's nickname and avatar, their invite code and a QR code of their share link.

Three formats: ``chat`` (a card for a friend, 1000×800, 5:4), ``moments`` (a poster for 朋友圈,
1080×1920) and ``group`` (a square image for a group chat, 1080×1080). Text is set in Noto Sans CJK SC
(Debian's ``fonts-noto-cjk``, installed by ``scripts/system-deps.sh fonts``), found with ``fc-list`` and
refused loudly when absent — a poster of tofu boxes is worse than none. Lines wrap by width, character by
character (Chinese has no spaces to break at).

``render_poster`` is a pure function of a ``PosterSpec`` (picklable, so a process pool can run it); what
it reuses between calls is per process: the fonts, each format's background, the scaled product photo.
Posters are cached on disk per (order, format, text) under the media dir and served as static files.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

from linli.referral.errors import PosterFontMissing

FORMATS: dict[str, tuple[int, int]] = {"chat": (1000, 800), "moments": (1080, 1920), "group": (1080, 1080)}
VERSION = "1"  # bump when the layout changes: cached posters are keyed by it
JPEG_QUALITY = 88

INK = (38, 38, 38)
MUTED = (120, 113, 108)
RED = (220, 38, 38)
GREEN = (62, 122, 58)
CARD = (255, 255, 255)
TOP, BOTTOM = (240, 248, 226), (255, 244, 222)

_FONT_FILES = ("NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc")


@dataclass(frozen=True)
class PosterSpec:
    """Everything a poster shows; ``photo_path`` and ``avatar_path`` are files or None."""

    format: str
    product_name: str
    price_fen: int
    store_price_fen: int
    line: str
    nickname: str
    code: str
    share_url: str
    brand: str = "麦香邻里"
    photo_path: str | None = None
    avatar_path: str | None = None


# --- fonts -----------------------------------------------------------------------------------------


@functools.cache
def font_files() -> tuple[str, str]:
    """(regular, bold) Noto Sans CJK collections: from ``fc-list :lang=zh``, else Debian's path."""
    found: dict[str, str] = {}
    try:
        listing = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listing = ""
    for line in listing.splitlines():
        path = line.split(":")[0].strip()
        if os.path.basename(path) in _FONT_FILES:
            found[os.path.basename(path)] = path
    for name in _FONT_FILES:
        fallback = f"/usr/share/fonts/opentype/noto/{name}"
        if name not in found and os.path.exists(fallback):
            found[name] = fallback
    if len(found) < 2:
        raise PosterFontMissing(
            "no Noto Sans CJK font found (fc-list :lang=zh); run `bash scripts/system-deps.sh fonts` "
            "to install fonts-noto-cjk"
        )
    return found[_FONT_FILES[0]], found[_FONT_FILES[1]]


@functools.cache
def font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
    """The Simplified Chinese face of the collection, at ``size`` pixels."""
    path = font_files()[1 if bold else 0]
    for index in range(8):
        face = ImageFont.truetype(path, size, index=index)
        if (face.getname()[0] or "").endswith(" SC"):
            return face
    raise PosterFontMissing(f"{path} has no Simplified Chinese (SC) face")


def wrap(text: str, face: ImageFont.FreeTypeFont, width: int, *, max_lines: int) -> list[str]:
    """Break ``text`` into lines no wider than ``width``, character by character; the last line that
    fits ends in "…" when text is left over."""
    lines: list[str] = []
    current = ""
    for ch in text:
        if face.getlength(current + ch) <= width:
            current += ch
            continue
        lines.append(current)
        current = ch
        if len(lines) == max_lines:
            break
    else:
        if current:
            lines.append(current)
        return lines
    last = lines[-1]
    while last and face.getlength(last + "…") > width:
        last = last[:-1]
    lines[-1] = last + "…"
    return lines


# --- pieces ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _background(size: tuple[int, int]) -> Image.Image:
    width, height = size
    column = Image.new("RGB", (1, height))
    for y in range(height):
        t = y / max(height - 1, 1)
        column.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(TOP, BOTTOM, strict=True)))
    return column.resize(size, Image.Resampling.NEAREST)


@functools.lru_cache(maxsize=16)
def _rounded_mask(size: tuple[int, int], radius: int) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, size[0] - 1, size[1] - 1), radius=radius, fill=255)
    return mask


@functools.lru_cache(maxsize=32)
def _photo(path: str | None, mtime: float, size: tuple[int, int]) -> Image.Image:
    """The product photo cropped to fill ``size`` (a drawn qingtuan when there is none)."""
    if path is None:
        return _placeholder(size)
    with Image.open(path) as source:
        source.draft("RGB", (size[0], size[1]))  # JPEG: decode at a reduced scale, much faster
        image = source.convert("RGB")
    scale = max(size[0] / image.width, size[1] / image.height)
    scaled = image.resize(
        (max(size[0], round(image.width * scale)), max(size[1], round(image.height * scale))),
        Image.Resampling.BILINEAR,
    )
    left, top = (scaled.width - size[0]) // 2, (scaled.height - size[1]) // 2
    return scaled.crop((left, top, left + size[0], top + size[1]))


def _placeholder(size: tuple[int, int]) -> Image.Image:
    image = Image.new("RGB", size, (214, 234, 200))
    draw = ImageDraw.Draw(image)
    r = min(size) // 3
    cx, cy = size[0] // 2, size[1] // 2
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(96, 153, 76))
    draw.ellipse((cx - r // 3, cy - r // 2, cx, cy - r // 5), fill=(140, 190, 110))
    return image


@functools.lru_cache(maxsize=64)
def _avatar(path: str | None, mtime: float, nickname: str, diameter: int) -> Image.Image:
    """A round avatar: the neighbour's picture, or the first character of their nickname."""
    if path is not None:
        with Image.open(path) as source:
            image = source.convert("RGB").resize((diameter, diameter), Image.Resampling.BILINEAR)
    else:
        image = Image.new("RGB", (diameter, diameter), GREEN)
        face = font(diameter // 2, bold=True)
        ImageDraw.Draw(image).text(
            (diameter / 2, diameter / 2), (nickname or "邻")[0], font=face, fill=CARD, anchor="mm"
        )
    mask = Image.new("L", (diameter, diameter), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, diameter - 1, diameter - 1), fill=255)
    image.putalpha(mask)
    return image


def qr_image(url: str, size: int) -> Image.Image:
    """A QR code of ``url`` (error correction M, a 2-module quiet zone) scaled to about ``size`` pixels."""
    qr = segno.make(url, error="m", micro=False)
    border = 2
    modules = int(qr.symbol_size(scale=1, border=border)[0])
    raw = bytearray()
    for row in qr.matrix_iter(scale=1, border=border):
        raw.extend(0 if dark else 255 for dark in row)
    image = Image.frombytes("L", (modules, modules), bytes(raw))
    scale = max(1, size // modules)
    return image.resize((modules * scale, modules * scale), Image.Resampling.NEAREST)


def _mtime(path: str | None) -> float:
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return 0.0


def _existing(path: str | None) -> str | None:
    return path if path and os.path.exists(path) else None


def _yuan(fen: int) -> str:
    yuan, rest = divmod(fen, 100)
    return f"{yuan}" if rest == 0 else f"{yuan}.{rest:02d}"


# --- layout ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    photo: tuple[int, int, int, int]  # x, y, width, height
    text_x: int
    text_y: int
    text_width: int
    name_size: int
    price_size: int
    line_size: int
    line_lines: int
    band_y: int  # the white band with avatar, nickname, code and QR
    qr: int
    avatar: int


LAYOUTS = {
    "moments": Layout((60, 150, 960, 880), 60, 1070, 960, 60, 96, 44, 3, 1520, 320, 130),
    "chat": Layout((40, 40, 420, 420), 500, 50, 460, 46, 72, 34, 4, 500, 230, 96),
    "group": Layout((40, 40, 1000, 400), 60, 470, 960, 52, 80, 38, 2, 810, 220, 100),
}


def render_poster(spec: PosterSpec) -> bytes:
    """The poster as a JPEG (see the module docstring)."""
    width, height = FORMATS[spec.format]
    layout = LAYOUTS[spec.format]
    canvas = _background((width, height)).copy()
    draw = ImageDraw.Draw(canvas)

    x, y, w, h = layout.photo
    photo_path = _existing(spec.photo_path)
    canvas.paste(_photo(photo_path, _mtime(photo_path), (w, h)), (x, y), _rounded_mask((w, h), 32))
    if spec.format == "moments":
        draw.text((60, 60), f"{spec.brand} · 邻里专享", font=font(44, bold=True), fill=GREEN)

    tx, ty, tw = layout.text_x, layout.text_y, layout.text_width
    name_face = font(layout.name_size, bold=True)
    for row in wrap(spec.product_name, name_face, tw, max_lines=2):
        draw.text((tx, ty), row, font=name_face, fill=INK)
        ty += round(layout.name_size * 1.3)
    ty += 8
    price_face = font(layout.price_size, bold=True)
    unit_face = font(layout.price_size // 2, bold=True)
    draw.text((tx, ty + layout.price_size // 2), "¥", font=unit_face, fill=RED)
    price = _yuan(spec.price_fen)
    px = tx + unit_face.getlength("¥") + 4
    draw.text((px, ty), price, font=price_face, fill=RED)
    if spec.store_price_fen > spec.price_fen:
        store_face = font(layout.price_size // 3)
        sx = px + price_face.getlength(price) + 20
        sy = ty + layout.price_size * 0.55
        store = f"门店价 ¥{_yuan(spec.store_price_fen)}"
        draw.text((sx, sy), store, font=store_face, fill=MUTED)
        left, top, right, bottom = draw.textbbox((sx, sy), store, font=store_face)
        mid = (top + bottom) // 2
        draw.line((left, mid, right, mid), fill=MUTED, width=3)
    ty += round(layout.price_size * 1.35)

    line_face = font(layout.line_size)
    rows = wrap(spec.line, line_face, tw - 48, max_lines=layout.line_lines)
    bubble_h = len(rows) * round(layout.line_size * 1.45) + 36
    draw.rounded_rectangle((tx, ty, tx + tw, ty + bubble_h), radius=24, fill=(255, 255, 255))
    row_y = ty + 18
    for row in rows:
        draw.text((tx + 24, row_y), row, font=line_face, fill=INK)
        row_y += round(layout.line_size * 1.45)

    band_top = layout.band_y
    draw.rounded_rectangle((30, band_top, width - 30, height - 30), radius=32, fill=CARD)
    qr = qr_image(spec.share_url, layout.qr)
    qx = width - 60 - qr.width
    qy = band_top + (height - 30 - band_top - qr.height) // 2
    canvas.paste(qr, (qx, qy))
    ax, ay = 70, band_top + 40
    avatar_path = _existing(spec.avatar_path)
    avatar = _avatar(avatar_path, _mtime(avatar_path), spec.nickname, layout.avatar)
    canvas.paste(avatar, (ax, ay), avatar)
    nick_face = font(round(layout.avatar * 0.38), bold=True)
    small = font(round(layout.avatar * 0.28))
    code_face = font(round(layout.avatar * 0.42), bold=True)
    nx = ax + layout.avatar + 24
    room = qx - nx - 20
    nickname = wrap(spec.nickname, nick_face, room, max_lines=1)
    draw.text((nx, ay), nickname[0] if nickname else "", font=nick_face, fill=INK)
    code_y = ay + round(layout.avatar * 0.52)
    draw.text((nx, code_y + round(layout.avatar * 0.1)), "邀请码", font=small, fill=MUTED)
    draw.text((nx + small.getlength("邀请码 "), code_y), spec.code, font=code_face, fill=GREEN)
    hint = wrap("长按识别二维码,和邻居一起抢", small, qx - ax - 20, max_lines=1)
    draw.text((ax, ay + layout.avatar + 24), hint[0], font=small, fill=MUTED)

    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


# --- the disk cache --------------------------------------------------------------------------------


def poster_path(
    media_dir: Path, order_id: int, fmt: str, line: str, nickname: str, avatar: str | None
) -> Path:
    """Where the poster of (order, format, text) is cached. The order fixes product and price; the
    owner's nickname and avatar are in the key too, so a changed profile draws a fresh poster. Computed
    from the request alone, so a cached poster is found without reading the order's lines."""
    raw = "\x1f".join([VERSION, str(order_id), fmt, line, nickname, avatar or ""])
    digest = hashlib.sha256(raw.encode()).hexdigest()[:24]
    return media_dir / "posters" / str(order_id) / f"{fmt}-{digest}.jpg"


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the whole file or none: written aside, then renamed over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def render_to(path: Path, spec: PosterSpec) -> Path:
    """Render ``spec`` into ``path`` unless it is there already (for a thread or a pool worker)."""
    if not path.exists():
        write_atomically(path, render_poster(spec))
    return path
