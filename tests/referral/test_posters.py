"""Poster rendering checks that can fail: sizes, the QR code read back by a real decoder (zxing-cpp), the
Chinese text set in a CJK face with a real glyph for every character (no tofu), wrapping, the cache."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageChops, ImageFont

from linli.referral import posters
from linli.referral.shares import SHARE_LINE_DEFAULT

URL = "http://127.0.0.1:8000/s/K7WQ3M?session=12"


def spec(fmt: str, **fields: object) -> posters.PosterSpec:
    values: dict[str, object] = {
        "format": fmt,
        "product_name": "春季限定青团",
        "price_fen": 2500,
        "store_price_fen": 3000,
        "line": SHARE_LINE_DEFAULT,
        "nickname": "张哥",
        "code": "K7WQ3M",
        "share_url": URL,
        **fields,
    }
    return posters.PosterSpec(**values)  # type: ignore[arg-type]


def decode(data: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))]


@pytest.mark.parametrize(
    ("fmt", "size"), [("chat", (1000, 800)), ("moments", (1080, 1920)), ("group", (1080, 1080))]
)
def test_each_format_has_its_size_and_its_qr_decodes_to_the_share_link(
    fmt: str, size: tuple[int, int]
) -> None:
    data = posters.render_poster(spec(fmt))
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert image.size == size
    assert decode(data) == [URL]


def test_the_chat_card_is_five_by_four() -> None:
    width, height = posters.FORMATS["chat"]
    assert width * 4 == height * 5


def test_a_long_share_link_still_decodes() -> None:
    url = "https://shop.example.cn/s/ABCDEF?session=123456789&utm_source=wechat_moments_share"
    assert decode(posters.render_poster(spec("moments", share_url=url))) == [url]


def _tofu(face: ImageFont.FreeTypeFont) -> bytes:
    """What the face draws for a character it has no glyph for (.notdef)."""
    return bytes(face.getmask("\U000f0000"))


def test_the_font_is_a_simplified_chinese_cjk_face_with_every_glyph() -> None:
    face = posters.font(40)
    family, _ = face.getname()
    assert family is not None
    assert "CJK" in family
    assert family.endswith("SC")
    tofu = _tofu(face)
    text = SHARE_LINE_DEFAULT + "春季限定青团张哥邀请码长按识别二维码和邻居一起抢门店价麦香邻里专享"
    missing = [ch for ch in set(text) if not ch.isascii() and bytes(face.getmask(ch)) == tofu]
    assert missing == []


def test_a_font_without_cjk_glyphs_would_be_caught() -> None:
    """The tofu check is real: a Latin-only face fails it for Chinese text."""
    latin = ImageFont.load_default(size=40)
    assert isinstance(latin, ImageFont.FreeTypeFont)
    tofu = _tofu(latin)
    assert bytes(latin.getmask("青")) == tofu


def test_the_share_line_is_drawn_and_changes_the_picture() -> None:
    a = Image.open(io.BytesIO(posters.render_poster(spec("moments"))))
    b = Image.open(io.BytesIO(posters.render_poster(spec("moments", line="周末和家人一起吃青团,真香!"))))
    diff = ImageChops.difference(a.convert("L"), b.convert("L")).getbbox()
    assert diff is not None
    # The difference is inside the share line's bubble, not all over the poster.
    left, top, right, bottom = diff
    layout = posters.LAYOUTS["moments"]
    assert top >= layout.text_y
    assert bottom <= layout.band_y


def test_lines_wrap_by_width_and_end_in_an_ellipsis_when_cut() -> None:
    face = posters.font(44)
    rows = posters.wrap("青团" * 40, face, 400, max_lines=3)
    assert len(rows) == 3
    assert all(face.getlength(r) <= 400 for r in rows)
    assert rows[-1].endswith("…")
    assert posters.wrap("青团好吃", face, 400, max_lines=3) == ["青团好吃"]


def test_a_product_photo_is_drawn_in_the_photo_box(tmp_path: Path) -> None:
    photo = tmp_path / "qingtuan.jpg"
    Image.new("RGB", (1200, 900), (200, 30, 30)).save(photo)
    image = Image.open(io.BytesIO(posters.render_poster(spec("moments", photo_path=str(photo)))))
    x, y, w, h = posters.LAYOUTS["moments"].photo
    r, g, b = image.getpixel((x + w // 2, y + h // 2))  # type: ignore[misc]
    assert r > 150
    assert g < 80
    assert b < 80


def _path(directory: Path, order_id: int, s: posters.PosterSpec) -> Path:
    return posters.poster_path(directory, order_id, s.format, s.line, s.nickname, s.avatar_path)


def test_the_cache_key_follows_the_order_format_text_and_profile(tmp_path: Path) -> None:
    a = _path(tmp_path, 7, spec("moments"))
    assert a == _path(tmp_path, 7, spec("moments"))
    assert a != _path(tmp_path, 7, spec("moments", line="别的话"))
    assert a != _path(tmp_path, 7, spec("chat"))
    assert a != _path(tmp_path, 8, spec("moments"))
    assert a != _path(tmp_path, 7, spec("moments", nickname="李姐"))
    path = posters.render_to(a, spec("moments"))
    first = path.stat().st_mtime_ns
    posters.render_to(a, spec("moments"))
    assert path.stat().st_mtime_ns == first
    assert decode(path.read_bytes()) == [URL]
