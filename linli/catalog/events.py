"""Event types the catalog appends to the log (payloads in ``service.py`` where each is recorded)."""

from __future__ import annotations

PRODUCT_CREATED = "catalog.product_created"
PRODUCT_UPDATED = "catalog.product_updated"  # payload: {"changes": {field: new value}}
PRODUCT_ARCHIVED = "catalog.product_archived"
PRODUCT_UNARCHIVED = "catalog.product_unarchived"
PRODUCT_IMAGE_ADDED = "catalog.product_image_added"
PRODUCT_IMAGE_REMOVED = "catalog.product_image_removed"
PRODUCT_IMAGES_REORDERED = "catalog.product_images_reordered"
