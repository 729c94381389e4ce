"""API shapes of stores, communities, pickup points and memberships."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from linli.core.schemas import CleanText, NoNullUpdate

Name = Annotated[str, CleanText(min_length=1, max_length=60)]
Address = Annotated[str, CleanText(min_length=1, max_length=200)]
District = Annotated[str, CleanText(max_length=40)]
Hours = Annotated[str, CleanText(max_length=60)]
Phone = Annotated[str, CleanText(max_length=20), StringConstraints(pattern=r"^[0-9+\- ]*$")]
Id = Annotated[int, Field(ge=1)]


class MembershipSource(enum.StrEnum):
    chosen = "chosen"  # the neighbour picked it
    invited = "invited"  # arrived through a share link
    assigned = "assigned"  # set by an operator or leader


class Page(BaseModel):
    total: int
    offset: int
    limit: int


# -- stores ---------------------------------------------------------------------------------------------


class StoreCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    address: Address
    district: District = ""
    phone: Phone = ""
    opening_hours: Hours = ""


class StoreUpdate(NoNullUpdate):
    name: Name | None = None
    address: Address | None = None
    district: District | None = None
    phone: Phone | None = None
    opening_hours: Hours | None = None


class StoreRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str
    district: str
    phone: str
    opening_hours: str
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class StorePage(Page):
    items: list[StoreRead]


# -- pickup points --------------------------------------------------------------------------------------


class PickupPointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community_id: Id
    name: Name
    address: Address
    opening_hours: Hours = ""
    leader_id: Id | None = None


class PickupPointUpdate(NoNullUpdate):
    nullable: ClassVar[frozenset[str]] = frozenset({"leader_id"})

    community_id: Id | None = None
    name: Name | None = None
    address: Address | None = None
    opening_hours: Hours | None = None
    leader_id: Id | None = None


class PickupPointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    community_name: str
    name: str
    address: str
    opening_hours: str
    leader_id: int | None
    leader_name: str | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PickupPointPage(Page):
    items: list[PickupPointRead]


class PickupPointPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str
    opening_hours: str
    leader_name: str | None


# -- communities ----------------------------------------------------------------------------------------


class CommunityCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    address: Address
    district: District = ""


class CommunityUpdate(NoNullUpdate):
    name: Name | None = None
    address: Address | None = None
    district: District | None = None


class CommunityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str
    district: str
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime
    pickup_points: list[PickupPointRead]


class CommunityPage(Page):
    items: list[CommunityRead]


class CommunityPublic(BaseModel):
    """A community as neighbours see it: only its open pickup points."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    address: str
    district: str
    pickup_points: list[PickupPointPublic] = Field(validation_alias="open_pickup_points")


class CommunityPublicPage(Page):
    items: list[CommunityPublic]


# -- leaders and memberships ----------------------------------------------------------------------------


class LeaderRead(BaseModel):
    id: int
    name: str
    phone: str


class MembershipChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community_id: Id


class MyCommunity(BaseModel):
    community: CommunityPublic | None
    source: MembershipSource | None = None
    joined_at: datetime | None = None
