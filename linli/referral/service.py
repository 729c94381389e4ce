"""Invite codes, share links and attribution: who brought whom, credited exactly once and hard to game.

- Every neighbour has one short invite code from an alphabet without look-alikes (no 0/O, 1/I/L).
- Opening ``/s/{code}`` binds the visitor (their anonymous id, and their user once known) to the code's
  owner for the operator's window (7 days by default). First-touch by default: a later click from another
  sharer inside the window leaves the existing binding alone; with last-touch it supersedes it.
- A new customer is a neighbour with no earlier paid order. Their first paid order inside the window is a
  conversion credited to the sharer (``referral.converted``); its refund reverses it (``referral.reversed``).
- Refused and logged (``referral.refused``, a ``refused`` binding row): the sharer themselves, a loop (A
  invited B, B invites A), and the same device (an anonymous id seen for both accounts) or the same phone
  (an account's phone or an order's contact phone) behind both. Checked when the visitor becomes known and
  again at the conversion, since devices and phones may be shared after the click.

The database makes conversions exact: one per referee and one per order (unique columns), so a repeated or
concurrent ``order.paid`` credits nobody twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import service as community_service
from linli.community.schemas import MembershipSource
from linli.core.clock import as_utc, to_local, utcnow
from linli.core.db import insert_ignoring, insert_unless_taken
from linli.core.events import Subjects, record_event
from linli.identity.models import AuthSession, Device, User
from linli.orders import coupons
from linli.orders import service as orders_service
from linli.orders.errors import CouponTemplateNotFound
from linli.orders.models import Order
from linli.referral import events
from linli.referral.errors import InvalidReferralSettings, InviteNotFound
from linli.referral.models import Binding, BindingStatus, Conversion, InviteCode, ReferralSettings

B = BindingStatus

# No 0/O, 1/I/L: a code read aloud or copied by hand from a poster comes out right.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 6
MAX_TOP_N, MAX_WINDOW_DAYS = 50, 90


# --- settings --------------------------------------------------------------------------------------


async def get_referral_settings(session: AsyncSession) -> ReferralSettings:
    """The operator's settings row, created with the defaults the first time (a race adds one row)."""
    row = await session.get(ReferralSettings, 1)
    if row is not None:
        return row
    row = ReferralSettings(id=1, window_days=7, last_touch=False, top_n=3, reward_template_ids=[])
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = await session.get(ReferralSettings, 1, populate_existing=True)
        assert found is not None
        return found
    return row


async def update_referral_settings(
    session: AsyncSession,
    *,
    actor: User,
    window_days: int | None = None,
    last_touch: bool | None = None,
    top_n: int | None = None,
    reward_template_ids: list[int] | None = None,
) -> ReferralSettings:
    """An operator changes the window, first/last touch, the leaderboard's top N or the reward per rank
    (a coupon template id each; every one must exist). New bindings use the new window."""
    if window_days is not None and not 1 <= window_days <= MAX_WINDOW_DAYS:
        raise InvalidReferralSettings(f"the window is 1 to {MAX_WINDOW_DAYS} days", field="window_days")
    if top_n is not None and not 0 <= top_n <= MAX_TOP_N:
        raise InvalidReferralSettings(f"the leaderboard rewards 0 to {MAX_TOP_N} ranks", field="top_n")
    if reward_template_ids is not None:
        if len(reward_template_ids) > MAX_TOP_N:
            raise InvalidReferralSettings("too many reward ranks", field="reward_template_ids")
        for template_id in reward_template_ids:
            try:
                await coupons.get_template(session, template_id)
            except CouponTemplateNotFound:
                raise InvalidReferralSettings(
                    f"no coupon template {template_id}", field="reward_template_ids"
                ) from None
    row = await get_referral_settings(session)
    changes: dict[str, Any] = {}
    for name, value in (
        ("window_days", window_days),
        ("last_touch", last_touch),
        ("top_n", top_n),
        ("reward_template_ids", reward_template_ids),
    ):
        if value is not None and getattr(row, name) != value:
            setattr(row, name, list(value) if isinstance(value, list) else value)
            changes[name] = value
    if changes:
        row.updated_at, row.updated_by = utcnow(), actor.id
        record_event(session, events.SETTINGS_UPDATED, actor_id=actor.id, payload=changes)
    await session.flush()
    return row


# --- invite codes and share links ------------------------------------------------------------------


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str:
    """Codes are read case-insensitively and without surrounding spaces."""
    return raw.strip().upper()[:12]


async def invite_code_of(session: AsyncSession, user_id: int) -> str:
    """The neighbour's invite code, made the first time it is asked for (unique; a clash draws again).
    Made by ``INSERT … ON CONFLICT DO NOTHING``: one statement, not a savepoint's four round trips."""
    existing = await session.get(InviteCode, user_id)
    if existing is not None:
        return existing.code
    for _ in range(8):
        row = await insert_unless_taken(
            session, InviteCode, {"user_id": user_id, "code": new_code(), "created_at": utcnow()}, key=None
        )
        if row is not None:
            return row.code
        raced = await session.get(InviteCode, user_id, populate_existing=True)
        if raced is not None:
            return raced.code  # the same neighbour's other request made it first
    raise RuntimeError("could not draw a free invite code")


async def invite_codes_of(session: AsyncSession, user_ids: set[int]) -> list[InviteCode]:
    """``invite_code_of`` for many neighbours at once: the codes they have, and the missing ones made
    in one multi-row insert (a clash, with another code or within the insert, draws again). While the
    caller holds the rows, ``invite_code_of`` finds them in the session without a query."""
    ids = sorted(user_ids)

    async def read(wanted: list[int]) -> list[InviteCode]:
        return list((await session.scalars(select(InviteCode).where(InviteCode.user_id.in_(wanted)))).all())

    codes = await read(ids) if ids else []
    for _ in range(8):
        have = {row.user_id for row in codes}
        missing = [user_id for user_id in ids if user_id not in have]
        if not missing:
            return codes
        now = utcnow()
        rows = [{"user_id": user_id, "code": new_code(), "created_at": now} for user_id in missing]
        await session.execute(insert_ignoring(session, InviteCode, rows, InviteCode.user_id))
        codes += await read(missing)
    raise RuntimeError("could not draw free invite codes")


async def sharer_of(session: AsyncSession, code: str) -> User:
    """The owner of an invite code; ``InviteNotFound`` for a code nobody has."""
    user_id = await session.scalar(select(InviteCode.user_id).where(InviteCode.code == normalise_code(code)))
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None or not user.is_active:
        raise InviteNotFound("this invite link is not valid", code=code[:12])
    return user


def share_path(code: str, *, session_id: int | None = None, product_id: int | None = None) -> str:
    """``/s/{code}``, naming the session or product it leads to."""
    if session_id is not None:
        return f"/s/{code}?session={session_id}"
    if product_id is not None:
        return f"/s/{code}?product={product_id}"
    return f"/s/{code}"


def share_url(base_url: str, code: str, **target: int | None) -> str:
    return base_url.rstrip("/") + share_path(code, **target)


# --- what ties two accounts together ---------------------------------------------------------------


async def anonymous_ids_of(session: AsyncSession, user_id: int) -> set[str]:
    """Every anonymous id (browser) seen for the user: their devices and the ids their logins came from
    (a device follows its latest login, so the sessions keep the earlier owners)."""
    devices = await session.scalars(select(Device.anonymous_id).where(Device.user_id == user_id))
    logins = await session.scalars(
        select(AuthSession.anonymous_id).where(
            AuthSession.user_id == user_id, AuthSession.anonymous_id.is_not(None)
        )
    )
    return {a for a in [*devices.all(), *logins.all()] if a}


async def phones_of(session: AsyncSession, user_id: int) -> set[str]:
    """The user's phone and every contact phone on their orders."""
    user = await session.get(User, user_id)
    contacts = await session.scalars(select(Order.contact_phone).where(Order.user_id == user_id).distinct())
    return {p for p in [user.phone if user else None, *contacts.all()] if p}


async def refusal_reason(
    session: AsyncSession, *, sharer_id: int, visitor_id: int | None, anonymous_id: str | None = None
) -> str | None:
    """Why the visitor may not be credited to the sharer (``self``, ``loop``, ``same_device``,
    ``same_phone``), or None."""
    if visitor_id == sharer_id:
        return "self"
    sharer_devices = await anonymous_ids_of(session, sharer_id)
    if visitor_id is None:
        return "same_device" if anonymous_id and anonymous_id in sharer_devices else None
    loop = await session.scalar(
        select(Binding.id)
        .where(
            Binding.sharer_id == visitor_id,
            Binding.user_id == sharer_id,
            Binding.status.in_([B.active.value, B.converted.value]),
        )
        .limit(1)
    )
    if loop is not None:
        return "loop"
    visitor_devices = await anonymous_ids_of(session, visitor_id)
    if anonymous_id:
        visitor_devices.add(anonymous_id)
    if sharer_devices & visitor_devices:
        return "same_device"
    if await phones_of(session, sharer_id) & await phones_of(session, visitor_id):
        return "same_phone"
    return None


def _binding_event(session: AsyncSession, binding: Binding, type_: str, payload: dict[str, Any]) -> None:
    """An event about the visitor of ``binding`` (their user once known, and their anonymous id)."""
    record_event(
        session,
        type_,
        actor_id=binding.user_id,
        subjects=Subjects(
            user_id=binding.user_id, anonymous_id=binding.anonymous_id, session_id=binding.session_id
        ),
        payload=payload,
    )


def _refuse(session: AsyncSession, binding: Binding, reason: str) -> None:
    binding.status, binding.refused_reason = B.refused.value, reason
    _binding_event(
        session,
        binding,
        events.REFUSED,
        {
            "reason": reason,
            "sharer_id": binding.sharer_id,
            "visitor_id": binding.user_id,
            "binding_id": binding.id,
            "code": binding.code,
        },
    )


def _bound_event(session: AsyncSession, binding: Binding) -> None:
    _binding_event(
        session,
        binding,
        events.BOUND,
        {
            "sharer_id": binding.sharer_id,
            "code": binding.code,
            "session_id": binding.session_id,
            "product_id": binding.product_id,
            "binding_id": binding.id,
            "expires_at": binding.expires_at.isoformat(),
        },
    )


# --- binding visitors ------------------------------------------------------------------------------


def _visitor_clause(user_id: int | None, anonymous_ids: set[str]) -> Any:
    clauses = []
    if user_id is not None:
        clauses.append(Binding.user_id == user_id)
    if anonymous_ids:
        clauses.append(Binding.user_id.is_(None) & Binding.anonymous_id.in_(sorted(anonymous_ids)))
    return or_(*clauses)


async def possibly_bound(session: AsyncSession, user_ids: set[int]) -> set[int]:
    """Which of these users hold an active binding, as themselves or through one of their anonymous
    ids, at any time: for a run of payments, two queries that set aside the buyers who came without a
    share link (most of them) before each remaining one is looked at closely."""
    if not user_ids:
        return set()
    ids = sorted(user_ids)
    anonymous = await session.execute(
        select(Device.user_id, Device.anonymous_id)
        .where(Device.user_id.in_(ids))
        .union_all(
            select(AuthSession.user_id, AuthSession.anonymous_id).where(
                AuthSession.user_id.in_(ids), AuthSession.anonymous_id.is_not(None)
            )
        )
    )
    owners: dict[str, set[int]] = {}
    for owner, browser in anonymous.all():
        if browser and owner is not None:
            owners.setdefault(browser, set()).add(owner)
    clauses: list[Any] = [Binding.user_id.in_(ids)]
    if owners:
        clauses.append(Binding.user_id.is_(None) & Binding.anonymous_id.in_(sorted(owners)))
    bindings = await session.execute(
        select(Binding.user_id, Binding.anonymous_id).where(or_(*clauses), Binding.status == B.active.value)
    )
    bound: set[int] = set()
    for visitor, visitor_browser in bindings.all():
        bound |= {visitor} if visitor is not None else owners.get(visitor_browser or "", set())
    return bound & user_ids


async def _active_bindings(
    session: AsyncSession, *, user_id: int | None, anonymous_ids: set[str], at: datetime
) -> list[Binding]:
    """The visitor's bindings in force at ``at``, oldest first."""
    if user_id is None and not anonymous_ids:
        return []
    rows = await session.scalars(
        select(Binding)
        .where(
            _visitor_clause(user_id, anonymous_ids),
            Binding.status == B.active.value,
            Binding.bound_at <= at,
            Binding.expires_at > at,
        )
        .order_by(Binding.bound_at, Binding.id)
    )
    return list(rows.all())


@dataclass(frozen=True)
class Visit:
    """What opening a share link did: the binding in force for the visitor (None when refused) and the
    sharer; ``kept`` when an earlier binding from another sharer stays (first-touch)."""

    sharer: User
    code: str
    binding: Binding | None
    refused: str | None = None
    kept: bool = False


async def record_visit(
    session: AsyncSession,
    *,
    code: str,
    anonymous_id: str | None,
    user: User | None,
    session_id: int | None = None,
    product_id: int | None = None,
    now: datetime | None = None,
) -> Visit:
    """A visitor opened the share link of ``code``: bind them to its owner (``referral.bound``), refuse it
    (``referral.refused``), or keep the binding they already have (see the module docstring). A logged-in
    neighbour without a community joins the sharer's (membership source ``invited``)."""
    now = now or utcnow()
    sharer = await sharer_of(session, code)
    code = normalise_code(code)
    config = await get_referral_settings(session)
    user_id = user.id if user is not None else None
    binding = Binding(
        sharer_id=sharer.id,
        code=code,
        user_id=user_id,
        anonymous_id=anonymous_id or None,
        session_id=session_id,
        product_id=product_id,
        status=B.active.value,
        bound_at=now,
        expires_at=now + timedelta(days=config.window_days),
    )
    reason = await refusal_reason(session, sharer_id=sharer.id, visitor_id=user_id, anonymous_id=anonymous_id)
    if reason is not None:
        session.add(binding)
        await session.flush()
        _refuse(session, binding, reason)
        await session.flush()
        return Visit(sharer, code, None, refused=reason)
    current = await _active_bindings(
        session, user_id=user_id, anonymous_ids={anonymous_id} if anonymous_id else set(), at=now
    )
    if user is not None:
        await _join_sharers_community(session, user.id, sharer.id)
    for existing in current:
        if existing.sharer_id == sharer.id:
            return Visit(sharer, code, existing)
    if current and not config.last_touch:
        return Visit(sharer, code, current[0], kept=True)
    for existing in current:
        existing.status = B.superseded.value
    session.add(binding)
    await session.flush()
    _bound_event(session, binding)
    await session.flush()
    return Visit(sharer, code, binding)


async def _join_sharers_community(session: AsyncSession, user_id: int, sharer_id: int) -> None:
    """A neighbour with no community yet lands in the one of the neighbour who invited them."""
    if await community_service.membership_of(session, user_id) is not None:
        return
    community = await community_service.community_of(session, sharer_id)
    if community is None or community.archived_at is not None:
        return
    await community_service.join_community(
        session, user_id, community.id, MembershipSource.invited, actor_id=user_id
    )


async def attach_user(
    session: AsyncSession, *, anonymous_id: str, user_id: int, now: datetime | None = None
) -> list[Binding]:
    """The browser behind ``anonymous_id`` logged in as ``user_id``: its anonymous bindings become the
    user's (``referral.bound`` again, now with the user), checked against the refusal rules, and reconciled
    with a binding the user already had (first-touch keeps the older, last-touch the newer)."""
    now = now or utcnow()
    anonymous = list(
        (
            await session.scalars(
                select(Binding)
                .where(
                    Binding.anonymous_id == anonymous_id,
                    Binding.user_id.is_(None),
                    Binding.status == B.active.value,
                    Binding.expires_at > now,
                )
                .order_by(Binding.bound_at, Binding.id)
            )
        ).all()
    )
    if not anonymous:
        return []
    config = await get_referral_settings(session)
    attached = []
    for binding in anonymous:
        binding.user_id = user_id
        reason = await refusal_reason(
            session, sharer_id=binding.sharer_id, visitor_id=user_id, anonymous_id=anonymous_id
        )
        if reason is not None:
            _refuse(session, binding, reason)
            continue
        attached.append(binding)
    await session.flush()
    in_force = await _active_bindings(session, user_id=user_id, anonymous_ids=set(), at=now)
    keep = (in_force[-1] if config.last_touch else in_force[0]) if in_force else None
    for binding in in_force:
        if binding is not keep:
            binding.status = B.superseded.value
    if keep is not None and keep in attached:
        _bound_event(session, keep)
        await _join_sharers_community(session, user_id, keep.sharer_id)
    await session.flush()
    return [keep] if keep is not None and keep in attached else []


# --- conversions -----------------------------------------------------------------------------------


def month_of(at: datetime) -> str:
    """The calendar month in Shanghai ("2026-12")."""
    return to_local(at).strftime("%Y-%m")


async def _has_earlier_paid_order(session: AsyncSession, order: Order) -> bool:
    assert order.paid_at is not None
    earlier = await session.scalar(
        select(Order.id)
        .where(
            Order.user_id == order.user_id,
            Order.id != order.id,
            Order.paid_at.is_not(None),
            Order.paid_at <= order.paid_at,
        )
        .limit(1)
    )
    return earlier is not None


async def attribute_first_order(
    session: AsyncSession, order_id: int, *, paid: tuple[int, datetime] | None = None
) -> Conversion | None:
    """``order.paid`` of ``order_id``: when it is a new customer's first paid order inside a binding's
    window, credit the sharer (``referral.converted``), honour them and make sure the month will close.
    Returns None when nothing is credited (not new, not bound, refused, already credited). Idempotent.

    ``paid`` is the buyer and the moment of payment as the ``order.paid`` event tells them: most buyers
    came without a share link, and with it their case ends on their bindings, the order never read."""
    from linli.referral import honours, leaderboard

    order = None
    if paid is None:
        order = await orders_service.get_order(session, order_id)
        if order.paid_at is None:
            return None
        paid = (order.user_id, order.paid_at)
    buyer_id, paid_at = paid[0], as_utc(paid[1])
    anonymous = await anonymous_ids_of(session, buyer_id)
    candidates = await _active_bindings(session, user_id=buyer_id, anonymous_ids=anonymous, at=paid_at)
    if not candidates:
        return None
    if order is None:
        order = await orders_service.get_order(session, order_id)
        if order.paid_at is None or order.user_id != buyer_id:
            return None
    done = await session.scalar(
        select(Conversion).where(or_(Conversion.order_id == order.id, Conversion.referee_id == order.user_id))
    )
    if done is not None or await _has_earlier_paid_order(session, order):
        return None
    config = await get_referral_settings(session)
    binding = candidates[-1] if config.last_touch else candidates[0]
    binding.user_id = order.user_id
    reason = await refusal_reason(
        session, sharer_id=binding.sharer_id, visitor_id=order.user_id, anonymous_id=binding.anonymous_id
    )
    if reason is not None:
        _refuse(session, binding, reason)
        await session.flush()
        return None
    referrer = await session.get(User, binding.sharer_id)
    assert referrer is not None
    community = await community_service.community_of(session, referrer.id)
    conversion = Conversion(
        binding_id=binding.id,
        referrer_id=referrer.id,
        referee_id=order.user_id,
        order_id=order.id,
        session_id=order.session_id,
        community_id=community.id if community is not None else order.community_id,
        month=month_of(paid_at),
        revenue_fen=order.total_fen,
        converted_at=paid_at,
    )
    try:
        async with session.begin_nested():
            session.add(conversion)
    except IntegrityError:
        return None  # a concurrent delivery of the same payment credited it
    binding.status = B.converted.value
    record_event(
        session,
        events.CONVERTED,
        subjects=Subjects(
            user_id=order.user_id,
            order_id=order.id,
            community_id=conversion.community_id,
            session_id=order.session_id,
        ),
        payload=_conversion_payload(conversion, referrer),
        occurred_at=paid_at,
    )
    await session.flush()
    await honours.honour_conversion(session, conversion, referrer, community)
    await leaderboard.schedule_month_close(session, conversion.month)
    return conversion


def _conversion_payload(conversion: Conversion, referrer: User, **extra: Any) -> dict[str, Any]:
    return {
        "referrer_id": referrer.id,
        "referrer_name": referrer.display_name,
        "referee_id": conversion.referee_id,
        "order_id": conversion.order_id,
        "revenue_fen": conversion.revenue_fen,
        "conversion_id": conversion.id,
        "month": conversion.month,
        **extra,
    }


async def reverse_conversion(
    session: AsyncSession, order_id: int, *, reason: str = "refunded", now: datetime | None = None
) -> Conversion | None:
    """``order.refunded``: the conversion that order made no longer counts (``referral.reversed``), nor does
    it in the referrer's weekly count. None when the order converted nothing or was reversed already."""
    from linli.referral import honours

    conversion = await session.scalar(select(Conversion).where(Conversion.order_id == order_id))
    if conversion is None or conversion.reversed_at is not None:
        return None
    now = now or utcnow()
    conversion.reversed_at, conversion.reversed_reason = now, reason
    referrer = await session.get(User, conversion.referrer_id)
    assert referrer is not None
    record_event(
        session,
        events.REVERSED,
        subjects=Subjects(
            user_id=conversion.referee_id,
            order_id=order_id,
            community_id=conversion.community_id,
            session_id=conversion.session_id,
        ),
        payload=_conversion_payload(conversion, referrer, reason=reason),
        occurred_at=now,
    )
    await honours.uncount_conversion(session, conversion)
    await session.flush()
    return conversion


async def conversions_of(session: AsyncSession, referrer_id: int) -> list[Conversion]:
    """The referrer's conversions, newest first (reversed ones included, marked)."""
    rows = await session.scalars(
        select(Conversion).where(Conversion.referrer_id == referrer_id).order_by(Conversion.id.desc())
    )
    return list(rows.all())
