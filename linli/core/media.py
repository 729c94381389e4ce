"""Uploaded images: the real type checked by decoding, size and pixel limits, stored by content hash.

What a client says a file is (its name, its ``Content-Type``) is ignored: Pillow decodes it and only JPEG,
PNG and WebP are kept. Every accepted image is re-encoded — EXIF orientation applied, EXIF/XMP/comments
dropped (phones put the neighbour's GPS position there) — and written under ``media_dir`` as
``<folder>/<hh>/<sha256>.<ext>``, served at ``/media/``. Same bytes, same file: a write is idempotent.

Files are written before the row that points at them commits; a rolled-back upload leaves an unreferenced
file, harmless because nothing links to it. Removal goes the other way: :func:`discard_after_commit`
unlinks only once the transaction that dropped the last reference has committed.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from linli.core.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType

# Pillow's format name → (content type, file extension).
ACCEPTED_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
_PENDING_KEY = "linli.media.discard"


class ImageTooLarge(PayloadTooLarge):
    """More bytes or more pixels than the configured limits."""


class ImageTypeNotAccepted(UnsupportedMediaType):
    """Not an image, or an image in a format we do not serve."""


class ImageDamaged(Unprocessable):
    """Looks like an accepted image but cannot be decoded."""


@dataclass(frozen=True, slots=True)
class StoredImage:
    path: str  # relative to media_dir, with forward slashes
    content_type: str
    width: int
    height: int
    size_bytes: int

    @property
    def url(self) -> str:
        return f"/media/{self.path}"


def check_size(size: int, *, max_bytes: int) -> None:
    """Refuse empty uploads and uploads over ``max_bytes`` before decoding anything."""
    if size == 0:
        raise BadRequest("the uploaded file is empty")
    if size > max_bytes:
        raise ImageTooLarge(f"an image may be at most {_megabytes(max_bytes)}; this one is larger")


def _looks_accepted(data: bytes) -> bool:
    """Starts like a JPEG, PNG or WebP file (so failing to decode it means damage, not a wrong type)."""
    return data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )


def _megabytes(size: int) -> str:
    return f"{size / 1048576:.1f} MB" if size >= 1048576 else f"{max(size // 1024, 1)} KB"


def prepare_image(data: bytes, *, max_bytes: int, max_pixels: int) -> tuple[bytes, StoredImage]:
    """Validate and re-encode ``data``; returns the bytes to store and where they will live.

    Raises ImageTooLarge (413), ImageTypeNotAccepted (415), ImageDamaged (422) or BadRequest (empty)."""
    check_size(len(data), max_bytes=max_bytes)
    try:
        with warnings.catch_warnings():
            # Pillow's own decompression-bomb guard is a warning below 2x its limit; make it a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        if _looks_accepted(data):
            raise ImageDamaged("the image is damaged and cannot be read") from exc
        raise ImageTypeNotAccepted("the file is not an image (JPEG, PNG or WebP expected)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge("the image has too many pixels") from exc
    except Exception as exc:
        # Malformed files make decoders fail in many ways (OSError, SyntaxError, struct.error, ...).
        raise ImageDamaged("the image is damaged and cannot be read") from exc
    with image:
        fmt = image.format or ""
        if fmt not in ACCEPTED_FORMATS:
            raise ImageTypeNotAccepted(f"{fmt or 'this'} images are not accepted; use JPEG, PNG or WebP")
        width, height = image.size
        # Checked from the header, before decoding a single pixel.
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"the image is {width}×{height} pixels; at most {max_pixels:,} pixels are accepted"
            )
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
        except Exception as exc:
            raise ImageDamaged("the image is damaged and cannot be read") from exc
        encoded = _encode(upright, fmt, icc_profile=image.info.get("icc_profile"))
    content_type, ext = ACCEPTED_FORMATS[fmt]
    digest = hashlib.sha256(encoded).hexdigest()
    stored = StoredImage(
        path=f"{digest[:2]}/{digest}.{ext}",
        content_type=content_type,
        width=upright.width,
        height=upright.height,
        size_bytes=len(encoded),
    )
    return encoded, stored


def _encode(image: Image.Image, fmt: str, *, icc_profile: Any) -> bytes:
    """Re-encode without metadata; the colour profile is kept because it is not about anyone."""
    params: dict[str, Any] = {}
    if icc_profile:
        params["icc_profile"] = icc_profile
    if fmt == "JPEG":
        if image.mode not in ("L", "RGB", "CMYK"):
            image = image.convert("RGB")
        params.update(quality=88, optimize=True)
    elif fmt == "WEBP":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if image.has_transparency_data else "RGB")
        params.update(quality=88)
    else:
        params.update(optimize=True)
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def store_image(data: bytes, *, media_dir: Path, folder: str, max_bytes: int, max_pixels: int) -> StoredImage:
    """Validate, re-encode and write an image under ``media_dir/folder``; see :func:`prepare_image`."""
    encoded, stored = prepare_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    stored = StoredImage(
        path=f"{folder.strip('/')}/{stored.path}",
        content_type=stored.content_type,
        width=stored.width,
        height=stored.height,
        size_bytes=stored.size_bytes,
    )
    target = media_dir / stored.path
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(encoded)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return stored


def discard_after_commit(session: AsyncSession, media_dir: Path, path: str) -> None:
    """Unlink ``media_dir/path`` once ``session``'s transaction commits; forgotten if it rolls back.

    The caller checks that no row still refers to the file."""
    sync: Session = session.sync_session
    pending: list[Path] | None = sync.info.get(_PENDING_KEY)
    if pending is None:
        pending = sync.info[_PENDING_KEY] = []
        event.listen(sync, "after_commit", _unlink_pending)
        event.listen(sync, "after_rollback", _forget_pending)
    target = (media_dir / path).resolve()
    if media_dir.resolve() in target.parents:
        pending.append(target)


def _unlink_pending(sync: Session) -> None:
    for target in sync.info.pop(_PENDING_KEY, []):
        target.unlink(missing_ok=True)
    sync.info[_PENDING_KEY] = []


def _forget_pending(sync: Session) -> None:
    sync.info[_PENDING_KEY] = []
