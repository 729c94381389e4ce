"""Operators change who belongs where: move a neighbour to another community, or take them out of theirs,
with a reason — through the community domain's membership verbs (one community at a time; each change is
its ``community.member_moved`` / ``community.member_left`` event, actor and reason included) — and the
neighbour is told in their inbox.

Orders are never moved: each keeps the community (and pickup point) it was placed in, so group orders'
counts and pick lists stay as they were; the neighbour's next order goes to their new community. Every
check comes before any write, so a refused change writes nothing."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import inbox
from linli.community import service as community_service
from linli.community.models import Community, Membership
from linli.community.schemas import MembershipSource
from linli.groupbuy import messages
from linli.groupbuy.errors import AlreadyInCommunity, InvalidMemberChange, MemberNotFound
from linli.identity.errors import UserNotFound
from linli.identity.models import User

INBOX_KIND = "membership"
REASON_MAX = 200


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise InvalidMemberChange("say why (the neighbour is told)", field="reason")
    if len(reason) > REASON_MAX:
        raise InvalidMemberChange(f"a reason of at most {REASON_MAX} characters", field="reason")
    return reason


async def _member(session: AsyncSession, community_id: int, user_id: int) -> tuple[Community, User]:
    """The community (archived or not) and its member ``user_id``; 404s for an unknown user or community,
    or a user who is not (or no longer) its member."""
    community = await community_service.get_community(session, community_id)
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"no user {user_id}", user_id=user_id)
    membership = await community_service.membership_of(session, user.id)
    if membership is None or membership.community_id != community.id:
        raise MemberNotFound(
            f"{user.display_name or user.id} is not a member of {community.name}", user_id=user_id
        )
    return community, user


async def move_member(
    session: AsyncSession, community_id: int, user_id: int, to_community_id: int, *, actor: User, reason: str
) -> Membership:
    """Move a member of ``community_id`` to ``to_community_id`` (an open community other than theirs)."""
    why = _reason(reason)
    community, user = await _member(session, community_id, user_id)
    target = await community_service.get_community(session, to_community_id)
    if target.archived_at is not None:
        raise community_service.CommunityArchived(
            f"{target.name} is archived: nobody can join it", field="to_community_id"
        )
    if target.id == community.id:
        raise AlreadyInCommunity(
            f"{user.display_name or user.id} is already in {target.name}", field="to_community_id"
        )
    membership = await community_service.join_community(
        session, user.id, target.id, MembershipSource.assigned, actor_id=actor.id, reason=why
    )
    await inbox.notify(
        session,
        user_id=user.id,
        kind=INBOX_KIND,
        message=messages.member_moved(community.name, target.name, why),
        link="/c",
    )
    return membership


async def remove_member(
    session: AsyncSession, community_id: int, user_id: int, *, actor: User, reason: str
) -> None:
    """Take a member out of ``community_id``: they belong to none until they choose one again."""
    why = _reason(reason)
    community, user = await _member(session, community_id, user_id)
    await community_service.leave_community(session, user.id, actor_id=actor.id, reason=why)
    await inbox.notify(
        session,
        user_id=user.id,
        kind=INBOX_KIND,
        message=messages.member_removed(community.name, why),
        link="/me",
    )
