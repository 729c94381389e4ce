"""Community admin pages: stores, communities (with their pickup points) and pickup points."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import service
from linli.community.models import Community, PickupPoint
from linli.community.schemas import (
    CommunityCreate,
    CommunityUpdate,
    PickupPointCreate,
    PickupPointUpdate,
    StoreCreate,
    StoreUpdate,
)
from linli.core.admin_pages import AdminResource, ChoiceList, Column, Field, Label, mount
from linli.core.templating import register_admin_nav
from linli.identity.deps import require_page_roles
from linli.identity.models import Role

router = APIRouter(include_in_schema=False)
operator_page = require_page_roles(Role.operator)

register_admin_nav("/admin/communities", "community.communities", 40)
register_admin_nav("/admin/pickup-points", "community.pickup_points", 45)
register_admin_nav("/admin/stores", "community.stores", 50)


async def community_choices(session: AsyncSession) -> ChoiceList:
    # Archived ones stay listed (marked) so a point that belongs to one keeps its value when saved.
    choices: list[tuple[str, str | Label]] = []
    for community_id, name, district, archived in await service.community_names(session):
        label = f"{name}({district})" if district else name
        choices.append(
            (str(community_id), Label("community.archived_choice", {"name": label}) if archived else label)
        )
    return choices


async def leader_choices(session: AsyncSession) -> ChoiceList:
    return [(str(u.id), f"{u.display_name} · {u.phone}") for u in await service.list_leaders(session)]


stores = AdminResource(
    path="/admin/stores",
    title="community.stores",
    noun="community.store",
    fields=(
        Field("name", "community.field.store_name", required=True, max_length=60),
        Field("district", "community.field.district", max_length=40),
        Field("address", "community.field.address", required=True, max_length=200, wide=True),
        Field("phone", "community.field.phone", max_length=20),
        Field("opening_hours", "community.field.opening_hours", max_length=60, hint="community.hint.hours"),
    ),
    columns=(
        Column("community.field.store_name", "name", link=True),
        Column("community.field.district", "district"),
        Column("community.field.address", "address"),
        Column("community.field.phone", "phone"),
        Column("community.field.opening_hours", "opening_hours"),
    ),
    create_schema=StoreCreate,
    update_schema=StoreUpdate,
    fetch=service.list_stores,
    get=service.get_store,
    create=service.create_store,
    update=service.update_store,
    archive=service.archive_store,
    unarchive=service.unarchive_store,
    guard=operator_page,
)


def _community_edit_url(community: Community) -> str:
    return f"/admin/communities/{community.id}/edit"


communities = AdminResource(
    path="/admin/communities",
    title="community.communities",
    noun="community.community",
    fields=(
        Field("name", "community.field.community_name", required=True, max_length=60),
        Field("district", "community.field.district", max_length=40),
        Field("address", "community.field.address", required=True, max_length=200, wide=True),
    ),
    columns=(
        Column("community.field.community_name", "name", link=True),
        Column("community.field.district", "district"),
        Column("community.field.address", "address"),
        Column("community.field.pickup_points", lambda c: len(c.open_pickup_points)),
    ),
    create_schema=CommunityCreate,
    update_schema=CommunityUpdate,
    fetch=service.list_communities,
    get=service.get_community,
    create=service.create_community,
    update=service.update_community,
    archive=service.archive_community,
    unarchive=service.unarchive_community,
    guard=operator_page,
    form_template="community/community_form.html",
    # After creating a community the next thing to do is add its pickup point, on its edit page.
    saved_url=_community_edit_url,
)


def _pickup_point_saved(point: PickupPoint) -> str:
    return f"/admin/communities/{point.community_id}/edit"


pickup_points = AdminResource(
    path="/admin/pickup-points",
    title="community.pickup_points",
    noun="community.pickup_point",
    fields=(
        Field(
            "community_id",
            "community.field.community",
            kind="select",
            required=True,
            choices=community_choices,
            blank="community.choose_community",
        ),
        Field("name", "community.field.pickup_point_name", required=True, max_length=60),
        Field("address", "community.field.address", required=True, max_length=200, wide=True),
        Field("opening_hours", "community.field.opening_hours", max_length=60, hint="community.hint.hours"),
        Field(
            "leader_id",
            "community.field.leader",
            kind="select",
            choices=leader_choices,
            blank="community.no_leader",
            hint="community.hint.leader",
        ),
    ),
    columns=(
        Column("community.field.pickup_point_name", "name", link=True),
        Column("community.field.community", "community_name"),
        Column("community.field.address", "address"),
        Column("community.field.opening_hours", "opening_hours"),
        Column("community.field.leader", "leader_name"),
    ),
    create_schema=PickupPointCreate,
    update_schema=PickupPointUpdate,
    fetch=service.list_pickup_points,
    get=service.get_pickup_point,
    create=service.create_pickup_point,
    update=service.update_pickup_point,
    archive=service.archive_pickup_point,
    unarchive=service.unarchive_pickup_point,
    guard=operator_page,
    saved_url=_pickup_point_saved,
)

for resource in (stores, communities, pickup_points):
    mount(router, resource)
