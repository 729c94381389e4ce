"""Event types the community domain appends to the log."""

from __future__ import annotations

STORE_CREATED = "community.store_created"
STORE_UPDATED = "community.store_updated"  # payload: {"changes": {field: new value}}
STORE_ARCHIVED = "community.store_archived"
STORE_UNARCHIVED = "community.store_unarchived"
COMMUNITY_CREATED = "community.community_created"
COMMUNITY_UPDATED = "community.community_updated"
COMMUNITY_ARCHIVED = "community.community_archived"
COMMUNITY_UNARCHIVED = "community.community_unarchived"
PICKUP_POINT_CREATED = "community.pickup_point_created"
PICKUP_POINT_UPDATED = "community.pickup_point_updated"
PICKUP_POINT_ARCHIVED = "community.pickup_point_archived"
PICKUP_POINT_UNARCHIVED = "community.pickup_point_unarchived"
MEMBER_JOINED = "community.member_joined"  # payload: {"source"}
MEMBER_MOVED = "community.member_moved"  # payload: {"source", "from_community_id"[, "reason"]}
MEMBER_LEFT = "community.member_left"  # payload: {"from_community_id", "reason"}
