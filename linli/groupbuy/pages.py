"""The groupbuy domain's pages: the room's progress section and the order page's group panel (registered
on live's and orders' extension points), the community join link, the leaders' mobile pickup pages and the
operators' fulfilment board, settings, batches and printable pick lists. Thin: the same verbs as the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Path, Request
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import HTMLResponse, RedirectResponse, Response

from linli.community import service as community_service
from linli.core.admin_pages import flash_redirect, render_admin, safe_next
from linli.core.clock import from_local, to_local
from linli.core.deps import RuntimeDep, SessionDep
from linli.core.errors import LinliError
from linli.core.money import parse_yuan
from linli.core.templating import env, locale_of, register_admin_nav, render, translator
from linli.groupbuy import api, fees, fulfilment, members, pickup, service, views
from linli.groupbuy.errors import InvalidMemberChange, InvalidSettings
from linli.groupbuy.schemas import SettingsUpdate
from linli.identity.deps import PageLeader, PageOperator, PageUser, client_address
from linli.identity.models import User
from linli.live import service as live_service
from linli.live.models import LiveSession
from linli.live.room_pages import register_room_section
from linli.orders import service as orders
from linli.orders.models import Order, OrderStatus
from linli.orders.pages import register_order_panel
from linli.orders.payments.checkout import page_provider

router = APIRouter(include_in_schema=False)
ADMIN = "/admin/groupbuy"
register_admin_nav(ADMIN, "groupbuy.admin.nav", order=65)

Id = Annotated[int, Path(ge=1, le=2**62)]
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def _markup(request: Request, name: str, context: dict[str, Any]) -> Markup:
    """A template rendered as part of another page (with the page's translator, locale and user)."""
    t = translator(request)
    shell = {
        "request": request,
        "t": t,
        "locale": locale_of(request),
        "csrf_token": getattr(request.state, "csrf_token", ""),
    }
    return Markup(env.get_template(name).render({**shell, **context}))


# --- sections on other domains' pages --------------------------------------------------------------


async def room_progress(
    request: Request, session: AsyncSession, live_session: LiveSession, user: User | None
) -> Markup | None:
    """The viewer's community bar ("XX花园 已集42份,还差8份") and the leading communities."""
    found = await views.progress(session, live_session.id, user)
    return _markup(
        request,
        "groupbuy/_room_progress.html",
        {"p": found, "s": live_session, "entry": views.progress_entry, "logged_in": user is not None},
    )


async def checkout_community_picker(
    request: Request, session: AsyncSession, live_session: LiveSession, user: User | None
) -> Markup | None:
    """The community picker the checkout sheet shows a neighbour without a community (first order)."""
    if user is None or await community_service.membership_of(session, user.id) is not None:
        return None
    return _markup(request, "groupbuy/_community_picker.html", {})


async def order_panel(request: Request, session: AsyncSession, order: Order) -> Markup | None:
    """Group progress, pickup code and QR, the delivery fee (and its pay button while it is due), and the
    fulfilment steps on the neighbour's order page."""
    if order.status == OrderStatus.pending_payment.value:
        return None
    view = await views.order_view(session, order, locale=locale_of(request))
    qr = pickup.qr_svg(view.code) if view.code is not None else None
    error = request.query_params.get("fee_error", "")
    t = translator(request)
    error_text = ""
    if error:
        key = f"groupbuy.fee.errors.{error}" if error.isidentifier() else "groupbuy.fee.errors.generic"
        error_text = t(key) if t(key) != key else t("groupbuy.fee.errors.generic")
    return _markup(request, "groupbuy/_order_panel.html", {"v": view, "qr": qr, "fee_error": error_text})


register_room_section("progress", room_progress, position=20)
register_room_section("footer", checkout_community_picker, position=20)
register_order_panel(order_panel, position=10)


@router.post("/orders/{order_id}/delivery-fee/pay")
async def pay_fee(
    request: Request, session: SessionDep, runtime: RuntimeDep, user: PageUser, order_id: Id
) -> Response:
    """The order page's "pay the delivery fee" button: to the provider's checkout (the sandbox cashier),
    which comes back to the order page; a fee not due any more comes back at once, saying why."""
    order = await orders.get_order_of(session, order_id, user.id)
    back = f"/orders/{order.id}"
    try:
        # Refusals come before any write (``start_fee_payment`` checks first), so nothing needs undoing.
        payment = await fees.start_fee_payment(
            session, runtime, order, provider_name=page_provider(runtime), payer_ip=client_address(request)
        )
    except LinliError as exc:
        return RedirectResponse(f"{back}?fee_error={exc.name}", status_code=303)
    url = str((payment.checkout or {}).get("url") or "")
    if not url:
        return RedirectResponse(f"{back}?fee_error=generic", status_code=303)
    if url.startswith("/"):  # our own cashier: it comes back to the order page
        url += ("&" if urlsplit(url).query else "?") + urlencode({"next": back})
    return RedirectResponse(url, status_code=303)


# --- the community link ----------------------------------------------------------------------------


@router.get("/c/{community_id}/join", response_class=HTMLResponse)
async def join_page(request: Request, session: SessionDep, user: PageUser, community_id: Id) -> Response:
    """A community's link (``?by=<neighbour id>`` when a neighbour shared it): a neighbour without a
    community joins at once; one in another community is asked first."""
    community = await community_service.get_community(session, community_id, include_archived=False)
    current = await community_service.community_of(session, user.id)
    by = request.query_params.get("by", "")
    next_url = safe_next(request.query_params.get("next"), "/")
    if current is None:
        await api.join(session, user, community.id, int(by) if by.isdigit() and len(by) < 19 else None)
        return RedirectResponse(next_url, status_code=303)
    return render(
        request,
        "groupbuy/join.html",
        {"community": community, "current": current, "by": by, "next": next_url},
    )


@router.post("/c/{community_id}/join", response_class=HTMLResponse)
async def join_confirm(request: Request, session: SessionDep, user: PageUser, community_id: Id) -> Response:
    form = await request.form()
    by = str(form.get("by") or "")
    await api.join(session, user, community_id, int(by) if by.isdigit() and len(by) < 19 else None)
    return RedirectResponse(safe_next(form.get("next"), "/"), status_code=303)


# --- leaders (mobile) ------------------------------------------------------------------------------


@router.get("/leader", response_class=HTMLResponse)
async def leader_home(request: Request, session: SessionDep, user: PageLeader) -> Response:
    points = await pickup.points_led_by(session, user.id)
    if len(points) == 1:
        return RedirectResponse(f"/leader/points/{points[0].id}", status_code=303)
    return render(request, "groupbuy/leader_home.html", {"points": points})


@router.get("/leader/points/{pickup_point_id}", response_class=HTMLResponse)
async def leader_point(
    request: Request, session: SessionDep, user: PageLeader, pickup_point_id: Id
) -> Response:
    """The orders at the leader's own point and the code verifier (typed, or scanned with the camera)."""
    point_id = await api.leader_point(session, user, pickup_point_id)
    point = await community_service.get_pickup_point(session, point_id)
    rows = await pickup.orders_at_point(session, point_id)
    return render(request, "groupbuy/leader.html", {"point": point, "rows": rows})


@router.get("/leader/points/{pickup_point_id}/members", response_class=HTMLResponse)
async def leader_members(
    request: Request, session: SessionDep, user: PageLeader, pickup_point_id: Id
) -> Response:
    point_id = await api.leader_point(session, user, pickup_point_id)
    point = await community_service.get_pickup_point(session, point_id)
    members = await views.members_of(session, point.community_id, mask=True)
    return render(request, "groupbuy/members.html", {"point": point, "members": members})


# --- operators (desktop) ---------------------------------------------------------------------------


@router.get(ADMIN, response_class=HTMLResponse)
async def admin_sessions(request: Request, session: SessionDep, operator: PageOperator) -> Response:
    sessions = await live_service.list_sessions(session)
    return render_admin(request, "groupbuy/admin_sessions.html", {"sessions": sessions})


@router.get(ADMIN + "/communities/{community_id}/members", response_class=HTMLResponse)
async def admin_members(
    request: Request, session: SessionDep, operator: PageOperator, community_id: Id
) -> Response:
    """A community's members as operators see them: full names, how each joined, since when; each can be
    moved to another community or taken out of this one, with a reason."""
    community = await community_service.get_community(session, community_id)
    rows = await views.members_of(session, community_id, mask=False)
    others = [
        (cid, name)
        for cid, name, _, archived in await community_service.community_names(session)
        if not archived and cid != community.id
    ]
    return render_admin(
        request,
        "groupbuy/admin_members.html",
        {"community": community, "members": rows, "others": others},
    )


@router.post(ADMIN + "/communities/{community_id}/members/{user_id}")
async def admin_change_member(
    request: Request, session: SessionDep, operator: PageOperator, community_id: Id, user_id: Id
) -> Response:
    """The members page's form: move the neighbour (``action=move``, ``to_community_id``) or take them out
    (``action=remove``), with a ``reason``. Refusals come back as the page's error, changing nothing."""
    form = await request.form()
    back = f"{ADMIN}/communities/{community_id}/members"
    action = str(form.get("action") or "")
    reason = str(form.get("reason") or "")
    target = str(form.get("to_community_id") or "")
    t = translator(request)
    try:
        async with session.begin_nested():
            if action == "move":
                if not target.isdigit() or len(target) > 18:
                    raise InvalidMemberChange(t("groupbuy.admin.choose_community"), field="to_community_id")
                moved = await members.move_member(
                    session, community_id, user_id, int(target), actor=operator, reason=reason
                )
                to = await community_service.get_community(session, moved.community_id)
                done = t("groupbuy.admin.member_moved", community=to.name)
            elif action == "remove":
                await members.remove_member(session, community_id, user_id, actor=operator, reason=reason)
                done = t("groupbuy.admin.member_removed")
            else:
                raise InvalidMemberChange("move or remove?", field="action")
    except LinliError as exc:
        return flash_redirect(request, back, exc.message, kind="error")
    return flash_redirect(request, back, done)


def _local(value: datetime | None) -> str:
    return to_local(value).strftime(LOCAL_INPUT) if value is not None else ""


async def _board_page(
    request: Request, session: AsyncSession, session_id: int, *, errors: dict[str, str] | None = None
) -> Response:
    live_session = await live_service.get_session(session, session_id)
    found = await fulfilment.board(session, session_id)
    stores, _ = await community_service.list_stores(session, limit=100)
    return render_admin(
        request,
        "groupbuy/admin_board.html",
        {"s": live_session, "b": found, "stores": stores, "local": _local, "errors": errors or {}},
        status_code=422 if errors else 200,
    )


@router.get(ADMIN + "/sessions/{session_id}", response_class=HTMLResponse)
async def admin_board(
    request: Request, session: SessionDep, operator: PageOperator, session_id: Id
) -> Response:
    """The fulfilment board: communities, units, threshold state, batches, pickups and exceptions."""
    return await _board_page(request, session, session_id)


def _settings_from_form(form: Any, current: service.Terms) -> SettingsUpdate:
    """The terms the form changes. The form always sends the times it shows (to the minute): a time
    sent back as shown is not a change, so saving another field never re-checks (and refuses) a promise
    or cutoff the operator did not touch."""

    def when(name: str) -> datetime | None:
        text = str(form.get(name) or "").strip()
        if not text:
            return None
        try:
            value = from_local(datetime.strptime(text, LOCAL_INPUT))
        except ValueError:
            raise InvalidSettings("use the date and time picker", field=name) from None
        shown = getattr(current, name)
        if shown is not None and value == shown.replace(second=0, microsecond=0):
            return None
        return value

    fee_text = str(form.get("delivery_fee") or "0").strip() or "0"
    try:
        fee = parse_yuan(fee_text)
    except (ValueError, LinliError):
        raise InvalidSettings("a fee in yuan, like 5 or 4.50", field="delivery_fee") from None
    store = str(form.get("fallback_store_id") or "")
    fields: dict[str, Any] = {
        "threshold": int(str(form.get("threshold") or "50"))
        if str(form.get("threshold") or "50").isdigit()
        else 0,
        "below_policy": str(form.get("below_policy") or "deliver"),
        "delivery_fee_fen": fee,
        "collect_fee": form.get("collect_fee") == "on",
        "fallback_store_id": int(store) if store.isdigit() else None,
    }
    if (deliver_by := when("deliver_by")) is not None:
        fields["deliver_by"] = deliver_by
    if (cutoff := when("cutoff_at")) is not None:
        fields["cutoff_at"] = cutoff
    try:
        return SettingsUpdate.model_validate(fields)
    except ValueError as exc:
        raise InvalidSettings(str(exc).splitlines()[0], field="threshold") from None


@router.post(ADMIN + "/sessions/{session_id}/settings", response_class=HTMLResponse)
async def admin_settings(
    request: Request, session: SessionDep, operator: PageOperator, session_id: Id
) -> Response:
    form = await request.form()
    try:
        async with session.begin_nested():
            current = await service.terms_of(session, session_id)
            await service.update_settings(
                session, session_id, _settings_from_form(form, current), actor=operator
            )
    except LinliError as exc:
        return await _board_page(
            request, session, session_id, errors={str(exc.context.get("field", "")): exc.message}
        )
    return flash_redirect(
        request, f"{ADMIN}/sessions/{session_id}", translator(request)("groupbuy.admin.saved")
    )


@router.post(ADMIN + "/sessions/{session_id}/cutoff", response_class=HTMLResponse)
async def admin_cutoff(
    request: Request, session: SessionDep, operator: PageOperator, session_id: Id
) -> Response:
    await live_service.get_session(session, session_id)
    closed = await service.close_session(session, session_id)
    t = translator(request)
    return flash_redirect(
        request, f"{ADMIN}/sessions/{session_id}", t("groupbuy.admin.closed", n=len(closed))
    )


@router.post(ADMIN + "/sessions/{session_id}/batches", response_class=HTMLResponse)
async def admin_create_batch(
    request: Request, session: SessionDep, operator: PageOperator, session_id: Id
) -> Response:
    form = await request.form()
    ids = [int(str(v)) for v in form.getlist("group_order_id") if str(v).isdigit() and len(str(v)) < 19]
    note = str(form.get("note") or "").strip()[:200]
    t = translator(request)
    if not ids:
        return flash_redirect(
            request, f"{ADMIN}/sessions/{session_id}", t("groupbuy.admin.pick_groups"), kind="error"
        )
    try:
        async with session.begin_nested():
            await fulfilment.create_batch(session, session_id, ids, note=note, actor=operator)
    except LinliError as exc:
        return flash_redirect(request, f"{ADMIN}/sessions/{session_id}", exc.message, kind="error")
    return flash_redirect(request, f"{ADMIN}/sessions/{session_id}", t("groupbuy.admin.batch_created"))


@router.post(ADMIN + "/batches/{batch_id}/{step}", response_class=HTMLResponse)
async def admin_batch_step(
    request: Request, session: SessionDep, operator: PageOperator, batch_id: Id, step: str
) -> Response:
    batch = await fulfilment.get_batch(session, batch_id)
    t = translator(request)
    verbs = {"dispatch": fulfilment.dispatch_batch, "arrive": fulfilment.confirm_arrival}
    if step not in verbs:
        return Response(status_code=404)
    try:
        async with session.begin_nested():
            await verbs[step](session, batch_id, actor=operator)
    except LinliError as exc:
        return flash_redirect(request, f"{ADMIN}/sessions/{batch.session_id}", exc.message, kind="error")
    return flash_redirect(
        request, f"{ADMIN}/sessions/{batch.session_id}", t(f"groupbuy.admin.batch_{step}ed")
    )


@router.get(ADMIN + "/sessions/{session_id}/pick-list", response_class=HTMLResponse)
async def admin_pick_list(
    request: Request, session: SessionDep, operator: PageOperator, session_id: Id
) -> Response:
    """Printable pick lists: the warehouse's totals, then one page per pickup point and store."""
    live_session = await live_service.get_session(session, session_id)
    picks = await fulfilment.pick_list(session, session_id)
    return render(request, "groupbuy/pick_list.html", {"s": live_session, "picks": picks})
