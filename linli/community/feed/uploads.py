"""Photos neighbours and staff attach to posts and reviews: checked and re-encoded by ``core.media``."""

from __future__ import annotations

from fastapi import UploadFile

from linli.core.config import Settings
from linli.core.media import store_image


async def store_upload(upload: UploadFile | None, settings: Settings, *, folder: str) -> str | None:
    """The stored image's media path, or None when no file was chosen (413/415/422 for a bad one)."""
    if upload is None or not upload.filename:
        return None
    # One byte past the limit is enough to know it is too large, without reading it all into memory.
    data = await upload.read(settings.max_image_bytes + 1)
    return store_image(
        data,
        media_dir=settings.media_dir,
        folder=folder,
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
    ).path
