"""Image checks without the app: what passes, what is refused and why."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from linli.core.errors import LinliError
from linli.core.media import ImageDamaged, ImageTooLarge, ImageTypeNotAccepted, prepare_image
from tests.catalog.factories import image_bytes, png_claiming

LIMITS = {"max_bytes": 5 * 1024 * 1024, "max_pixels": 40_000_000}


def noisy_jpeg(size: tuple[int, int] = (256, 256)) -> bytes:
    out = io.BytesIO()
    Image.effect_noise(size, 80).convert("RGB").save(out, format="JPEG", quality=95)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepted_formats_keep_their_format(fmt: str) -> None:
    encoded, stored = prepare_image(image_bytes(fmt), **LIMITS)
    assert Image.open(io.BytesIO(encoded)).format == fmt
    assert stored.path.endswith({"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[fmt])
    assert (stored.width, stored.height, stored.size_bytes) == (32, 24, len(encoded))


def test_transparent_png_stays_transparent() -> None:
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    encoded, _ = prepare_image(out.getvalue(), **LIMITS)
    assert Image.open(io.BytesIO(encoded)).convert("RGBA").getpixel((5, 5))[3] == 0


def test_truncated_pixel_data_is_damaged() -> None:
    data = noisy_jpeg()
    with pytest.raises(ImageDamaged) as caught:
        prepare_image(data[: len(data) // 2], **LIMITS)
    assert caught.value.status_code == 422


@pytest.mark.parametrize(
    ("data", "error", "status"),
    [
        (b"%PDF-1.7\n", ImageTypeNotAccepted, 415),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", ImageTypeNotAccepted, 415),
        (image_bytes("TIFF"), ImageTypeNotAccepted, 415),
        (png_claiming(70_000, 70_000), ImageTooLarge, 413),
        (png_claiming(7000, 7000), ImageTooLarge, 413),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, ImageDamaged, 422),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, ImageDamaged, 422),
    ],
)
def test_refusals(data: bytes, error: type[LinliError], status: int) -> None:
    with pytest.raises(error) as caught:
        prepare_image(data, **LIMITS)
    assert caught.value.status_code == status
    assert caught.value.message


@pytest.mark.parametrize("seed", range(40))
def test_mangled_images_never_escape_as_unexpected_errors(seed: int) -> None:
    """Flip bytes all over real images: each must be accepted or refused with a LinliError (a 4xx)."""
    rng = random.Random(seed)
    data = bytearray(image_bytes(rng.choice(["JPEG", "PNG", "WEBP"]), size=(40, 30)))
    for _ in range(rng.randint(1, 12)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    status = 201
    try:
        prepare_image(bytes(data), **LIMITS)
    except LinliError as exc:
        status = exc.status_code
    assert status == 201 or 400 <= status < 500
