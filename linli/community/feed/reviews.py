"""Testimonials (滚动证言): after pickup a neighbour reviews what they bought (rating 1–5, text, an optional
photo); an operator approves it; approved reviews roll on the room's product card and the checkout sheet,
neighbours of the viewer's own community first ("XX花园的李姐: ..."), and in the feed.

Eligibility comes from the orders domain's ``order.completed`` (its lines' product ids; the order is what
"picked up" means), recorded by a consumer by event name — one review per order and product. The
reviewer's inbox gets the invitation to review.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import inbox
from linli.community.feed import posts
from linli.community.feed.models import Review, ReviewEligibility
from linli.community.models import Community
from linli.core.clock import utcnow
from linli.core.consumers import Consumer
from linli.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from linli.core.events import Event, Subjects, record_event
from linli.core.i18n import Message
from linli.identity.models import Role, User

ORDER_COMPLETED = "order.completed"
CONSUMER = "community.review_eligibility"
REVIEW_SUBMITTED, REVIEW_APPROVED, REVIEW_REJECTED = "review.submitted", "review.approved", "review.rejected"
MAX_REVIEW_CHARS = 300
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


class NotEligible(Forbidden):
    """Reviews come from neighbours who picked the product up."""


class AlreadyReviewed(Conflict):
    pass


class ReviewNotFound(NotFound):
    pass


class InvalidReview(Unprocessable):
    pass


async def _on_completed(session: AsyncSession, event: Event) -> None:
    if event.user_id is None or event.order_id is None:
        return
    lines = (event.payload or {}).get("lines") or []
    told = False
    for line in lines:
        product_id = line.get("product_id") if isinstance(line, dict) else None
        if not isinstance(product_id, int):
            continue
        exists = await session.scalar(
            select(ReviewEligibility.id).where(
                ReviewEligibility.order_id == event.order_id, ReviewEligibility.product_id == product_id
            )
        )
        if exists is not None:
            continue
        session.add(
            ReviewEligibility(
                order_id=event.order_id,
                product_id=product_id,
                product_name=str(line.get("product_name") or "")[:120],
                user_id=event.user_id,
                community_id=event.community_id,
                completed_at=event.occurred_at,
            )
        )
        told = True
    await session.flush()
    if told:
        await inbox.notify(
            session,
            user_id=event.user_id,
            kind="review_invite",
            message=Message("community.inbox.review_invite"),
            link="/reviews",
            dedupe_key=f"review_invite:{event.order_id}",
        )


def eligibility_consumer() -> Consumer:
    return Consumer(name=CONSUMER, handler=_on_completed, types=frozenset({ORDER_COMPLETED}))


async def to_review(session: AsyncSession, user_id: int) -> list[ReviewEligibility]:
    """What the neighbour picked up and has not reviewed yet, newest first."""
    reviewed = select(Review.id).where(
        Review.order_id == ReviewEligibility.order_id, Review.product_id == ReviewEligibility.product_id
    )
    return list(
        (
            await session.scalars(
                select(ReviewEligibility)
                .where(ReviewEligibility.user_id == user_id, ~reviewed.exists())
                .order_by(ReviewEligibility.id.desc())
                .limit(50)
            )
        ).all()
    )


async def submit_review(
    session: AsyncSession,
    runtime: Any,
    user: User,
    *,
    order_id: int,
    product_id: int,
    rating: int,
    text: str,
    photo_path: str | None = None,
) -> Review:
    """A review of a product the neighbour picked up on that order; pending until an operator approves."""
    eligible = await session.scalar(
        select(ReviewEligibility).where(
            ReviewEligibility.order_id == order_id,
            ReviewEligibility.product_id == product_id,
            ReviewEligibility.user_id == user.id,
        )
    )
    if eligible is None:
        raise NotEligible("you can review what you picked up, on that order")
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise InvalidReview("a rating is 1 to 5 stars", field="rating")
    text = posts.clean_text(text, limit=MAX_REVIEW_CHARS, multiline=False)
    await posts.refuse_sensitive(session, runtime, text)
    review = Review(
        order_id=order_id,
        product_id=product_id,
        product_name=eligible.product_name,
        user_id=user.id,
        community_id=eligible.community_id,
        rating=rating,
        text=text,
        photo_path=photo_path,
        status=PENDING,
        created_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(review)
    except IntegrityError:
        raise AlreadyReviewed("you reviewed this already") from None
    record_event(
        session,
        REVIEW_SUBMITTED,
        actor_id=user.id,
        subjects=Subjects(
            user_id=user.id, order_id=order_id, product_id=product_id, community_id=eligible.community_id
        ),
        payload={"review_id": review.id, "rating": rating},
    )
    await session.flush()
    return review


async def decide(session: AsyncSession, actor: User, review_id: int, approve: bool) -> Review:
    """An operator approves (shown from now on) or rejects a review; deciding again just changes it."""
    if not actor.has_role(Role.operator):
        raise Forbidden("only operators approve reviews")
    review = await session.get(Review, review_id)
    if review is None:
        raise ReviewNotFound(f"no review {review_id}")
    status = APPROVED if approve else REJECTED
    if review.status != status:
        review.status, review.decided_at, review.decided_by_id = status, utcnow(), actor.id
        record_event(
            session,
            REVIEW_APPROVED if approve else REVIEW_REJECTED,
            actor_id=actor.id,
            subjects=Subjects(
                user_id=review.user_id, product_id=review.product_id, community_id=review.community_id
            ),
            payload={"review_id": review.id},
        )
        await session.flush()
    return review


async def list_reviews(
    session: AsyncSession, *, status: str | None = PENDING, limit: int = 100
) -> list[Review]:
    query = select(Review).order_by(Review.id.desc()).limit(limit)
    if status:
        query = query.where(Review.status == status)
    return list((await session.scalars(query)).all())


async def approved_for(
    session: AsyncSession,
    *,
    product_ids: list[int] | None = None,
    community_id: int | None = None,
    limit: int = 20,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Approved reviews (of some products, or all), the viewer's community first, then newest; each as
    the rolling line shows it: "XX花园的李姐" and the text."""
    query = select(Review).where(Review.status == APPROVED)
    if product_ids is not None:
        if not product_ids:
            return []
        query = query.where(Review.product_id.in_(product_ids))
    if since is not None:
        query = query.where(Review.created_at >= since)
    order: list[Any] = []
    if community_id is not None:
        order.append(case((Review.community_id == community_id, 0), else_=1))
    rows = list((await session.scalars(query.order_by(*order, Review.id.desc()).limit(limit))).all())
    names = await posts.names_of(session, [r.user_id for r in rows])
    community_ids = list({r.community_id for r in rows if r.community_id is not None})
    communities = {}
    if community_ids:
        communities = dict(
            (
                await session.execute(
                    select(Community.id, Community.name).where(Community.id.in_(community_ids))
                )
            ).all()
        )
    return [
        {
            "id": r.id,
            "product_id": r.product_id,
            "product_name": r.product_name,
            "rating": r.rating,
            "text": r.text,
            "photo_url": f"/media/{r.photo_path}" if r.photo_path else None,
            "who": (f"{communities[r.community_id]}的" if r.community_id in communities else "")
            + names.get(r.user_id, ""),
            "same_community": community_id is not None and r.community_id == community_id,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
