"""Admin console pages for live sessions: the list, the session form, and the session page with its
lineup and status buttons. Thin: forms become the same schemas the API takes, then the same service verbs.

Forms go through ``core.admin_pages`` (``read_form`` / ``submit``): a refused save runs in a rolled-back
savepoint, so it writes nothing, and the page comes back with the error next to its field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from linli.core.admin_pages import (
    FORM_ERROR,
    Field,
    FormState,
    ListQuery,
    flash_redirect,
    read_form,
    render_admin,
    render_form,
    submit,
)
from linli.core.clock import to_local
from linli.core.deps import SessionDep, SettingsDep
from linli.core.errors import LinliError
from linli.core.templating import register_admin_nav, translator
from linli.identity.deps import PageOperator
from linli.live import service
from linli.live.models import LiveSession, SessionStatus
from linli.live.room_pages import router as room_router
from linli.live.schemas import LineupItemCreate, LineupItemUpdate, LiveSessionCreate, LiveSessionUpdate

router = APIRouter(include_in_schema=False)
register_admin_nav("/admin/sessions", "live.admin_sessions", order=40)

BASE = "/admin/sessions"

SESSION_FIELDS: tuple[Field, ...] = (
    Field("title", "live.field.title", required=True, max_length=60, wide=True),
    Field("scheduled_start", "live.field.scheduled_start", kind="datetime", required=True),
    Field(
        "host_id", "live.field.host", kind="select", choices=service.host_choices, blank="live.field.no_host"
    ),
    Field("playback_url", "live.field.playback_url", hint="live.field.url_hint", max_length=500, wide=True),
    Field("push_url", "live.field.push_url", hint="live.field.url_hint", max_length=500, wide=True),
    Field("description", "live.field.description", kind="textarea", max_length=2000),
)

LINEUP_TERMS: tuple[Field, ...] = (
    Field("live_price_fen", "live.lineup.live_price", kind="money", required=True),
    Field("stock", "live.lineup.stock", kind="int", required=True),
    Field("per_user_limit", "live.lineup.limit", kind="int", required=True),
    Field("sale_starts_at", "live.lineup.sale_starts_at", kind="datetime", hint="live.lineup.window_hint"),
    Field("sale_ends_at", "live.lineup.sale_ends_at", kind="datetime"),
)
LINEUP_ADD_FIELDS: tuple[Field, ...] = (
    Field(
        "product_id",
        "live.lineup.product",
        kind="select",
        required=True,
        blank="live.lineup.choose_product",
        wide=True,
    ),
    *LINEUP_TERMS,
)


def _session_fields(live_session: LiveSession | None) -> tuple[Field, ...]:
    """Once live, the fields that would break the session are shown, not edited."""
    if live_session is None or live_session.status in (SessionStatus.draft, SessionStatus.scheduled):
        return SESSION_FIELDS
    return tuple(f for f in SESSION_FIELDS if f.name not in service.FIXED_ONCE_LIVE)


def _read_targets(form: FormData, state: FormState) -> list[int]:
    raw = [v for v in form.getlist("community_ids") if isinstance(v, str)]
    ids = [int(v) for v in raw if v.isdigit()]
    state.values["community_ids"] = ",".join(raw)
    state.data["community_ids"] = ids
    return ids


async def _session_form(
    request: Request,
    session: AsyncSession,
    state: FormState,
    live_session: LiveSession | None,
    selected: list[int],
    *,
    status_code: int = 200,
) -> Response:
    t = translator(request)
    fields = _session_fields(live_session)
    fixed: list[tuple[str, str]] = []
    if live_session is not None and fields is not SESSION_FIELDS:
        names = await service.community_names(session, [c.community_id for c in live_session.communities])
        fixed = [
            ("live.field.scheduled_start", _local(live_session)),
            ("live.field.host", live_session.host.display_name if live_session.host else t("live.none")),
            ("live.field.push_url", live_session.push_url or t("live.not_set")),
            ("live.field.communities", "、".join(names.values()) or t("live.all_communities")),
        ]
    return await render_form(
        request,
        session,
        title=t("admin.ui.edit_title", noun=t("live.noun")) if live_session else t("live.action.new"),
        fields=fields,
        state=state,
        action=f"{BASE}/{live_session.id}/edit" if live_session else f"{BASE}/new",
        cancel_href=f"{BASE}/{live_session.id}" if live_session else BASE,
        template="live/session_form.html",
        item=live_session,
        status_code=status_code,
        targets_editable=live_session is None or live_session.status in ("draft", "scheduled"),
        community_options=await service.community_choices(session),
        selected_communities=selected,
        fixed=fixed,
    )


def _local(live_session: LiveSession) -> str:
    return to_local(live_session.scheduled_start).strftime("%Y-%m-%d %H:%M")


# --- list -----------------------------------------------------------------------------------------


@router.get(BASE)
async def sessions_page(request: Request, session: SessionDep, operator: PageOperator) -> Response:
    query = ListQuery.from_request(request)
    status_param = request.query_params.get("status", "")
    status = SessionStatus(status_param) if status_param in SessionStatus.__members__ else None
    archived = query.include_archived
    result = await service.list_sessions(
        session, q=query.q, status=status, archived=archived, page=query.page, per_page=query.per_page
    )

    def link(**change: Any) -> str:
        values: dict[str, Any] = {
            "q": query.q,
            "status": status.value if status else "",
            "archived": "1" if archived else "",
            "page": 1,
        }
        values.update(change)
        params = urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})
        return f"{BASE}?{params}" if params else BASE

    return render_admin(
        request,
        "live/sessions.html",
        {
            "result": result,
            "q": query.q,
            "status": status.value if status else "",
            "archived": archived,
            "statuses": [s.value for s in SessionStatus],
            "link": link,
        },
    )


# --- create and edit ------------------------------------------------------------------------------


@router.get(f"{BASE}/new")
async def new_session_page(request: Request, session: SessionDep, operator: PageOperator) -> Response:
    return await _session_form(request, session, FormState.from_query(SESSION_FIELDS, request), None, [])


@router.post(f"{BASE}/new")
async def create_session_submit(request: Request, session: SessionDep, operator: PageOperator) -> Response:
    form = await request.form()
    state = await read_form(request, SESSION_FIELDS, form)
    targets = _read_targets(form, state)
    created = await submit(
        request,
        session,
        state,
        LiveSessionCreate,
        lambda data: service.create_session(session, data, actor=operator),
        fields=SESSION_FIELDS,
    )
    if created is None:
        return await _session_form(request, session, state, None, targets, status_code=422)
    return flash_redirect(request, f"{BASE}/{created.id}", translator(request)("live.flash.created"))


@router.get(f"{BASE}/{{session_id}}/edit")
async def edit_session_page(
    request: Request, session_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    state = FormState.from_item(_session_fields(live_session), live_session)
    selected = [c.community_id for c in live_session.communities]
    return await _session_form(request, session, state, live_session, selected)


@router.post(f"{BASE}/{{session_id}}/edit")
async def edit_session_submit(
    request: Request, session_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    fields = _session_fields(live_session)
    form = await request.form()
    state = await read_form(request, fields, form)
    targets_editable = live_session.status in (SessionStatus.draft, SessionStatus.scheduled)
    targets = _read_targets(form, state) if targets_editable else []
    saved = await submit(
        request,
        session,
        state,
        LiveSessionUpdate,
        lambda data: service.update_session(session, live_session, data, actor=operator),
        fields=fields,
    )
    if saved is None:
        live_session = await service.get_session(session, session_id, fresh=True)
        return await _session_form(request, session, state, live_session, targets, status_code=422)
    return flash_redirect(request, f"{BASE}/{session_id}", translator(request)("live.flash.saved"))


# --- the session page -----------------------------------------------------------------------------


async def _session_page(
    request: Request,
    session: AsyncSession,
    live_session: LiveSession,
    *,
    lineup_state: FormState | None = None,
    status_code: int = 200,
) -> Response:
    lineup_state = lineup_state or FormState(values={"per_user_limit": "10"})
    archived = live_session.archived_at is not None
    return render_admin(
        request,
        "live/session.html",
        {
            "s": live_session,
            "lineup": service.list_lineup(live_session, include_archived=True),
            "transitions": [] if archived else service.allowed_transitions(live_session.status),
            "lineup_open": not archived and live_session.status != SessionStatus.ended,
            "lineup_fields": LINEUP_ADD_FIELDS,
            "lineup_values": lineup_state.values,
            "lineup_errors": lineup_state.errors,
            "lineup_form_error": lineup_state.errors.get(FORM_ERROR),
            "choices": {"product_id": await service.product_choices(session, live_session)},
            "community_names": await service.community_names(
                session, [c.community_id for c in live_session.communities]
            ),
        },
        status_code=status_code,
    )


@router.get(f"{BASE}/{{session_id}}")
async def session_page(
    request: Request, session_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    return await _session_page(request, session, await service.get_session(session, session_id))


async def _act(request: Request, session: AsyncSession, back: str, done: str, action: Any) -> Response:
    """Run one service verb for a button; a refusal comes back as an error message, having written nothing."""
    try:
        async with session.begin_nested():
            result = await action()
    except LinliError as exc:
        return flash_redirect(request, back, exc.message, kind="error")
    t = translator(request)
    return flash_redirect(request, back, t(done, **(result if isinstance(result, dict) else {})))


@router.post(f"{BASE}/{{session_id}}/transition")
async def transition_submit(
    request: Request, session_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    to = (await request.form()).get("to")
    t = translator(request)

    async def action() -> dict[str, str]:
        moved = await service.transition_session(session, live_session, str(to), operator)
        return {"status": t(f"live.status.{moved.status}")}

    return await _act(request, session, f"{BASE}/{session_id}", "live.flash.transitioned", action)


@router.post(f"{BASE}/{{session_id}}/archive")
async def archive_submit(
    request: Request, session_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    return await _act(
        request,
        session,
        f"{BASE}/{session_id}",
        "live.flash.archived",
        lambda: service.archive_session(session, live_session, actor=operator),
    )


@router.post(f"{BASE}/{{session_id}}/unarchive")
async def unarchive_submit(
    request: Request, session_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    return await _act(
        request,
        session,
        f"{BASE}/{session_id}",
        "live.flash.unarchived",
        lambda: service.unarchive_session(session, live_session, actor=operator),
    )


@router.post(f"{BASE}/{{session_id}}/cover")
async def cover_submit(
    request: Request, session_id: int, session: SessionDep, settings: SettingsDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    async with request.form() as form:  # closes the spooled upload when done
        upload = form.get("file")
        data = await upload.read(settings.max_image_bytes + 1) if isinstance(upload, UploadFile) else b""
    return await _act(
        request,
        session,
        f"{BASE}/{session_id}",
        "live.flash.cover_saved",
        lambda: service.replace_session_cover(session, live_session, data, settings=settings, actor=operator),
    )


# --- lineup ---------------------------------------------------------------------------------------


@router.post(f"{BASE}/{{session_id}}/lineup")
async def add_item_submit(
    request: Request, session_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    state = await read_form(request, LINEUP_ADD_FIELDS)
    item = await submit(
        request,
        session,
        state,
        LineupItemCreate,
        lambda data: service.add_lineup_item(session, live_session, data, actor=operator),
        fields=LINEUP_ADD_FIELDS,
    )
    if item is None:
        live_session = await service.get_session(session, session_id, fresh=True)
        return await _session_page(request, session, live_session, lineup_state=state, status_code=422)
    return flash_redirect(
        request, f"{BASE}/{session_id}#lineup", translator(request)("live.flash.item_added")
    )


@router.get(f"{BASE}/{{session_id}}/lineup/{{item_id}}/edit")
async def edit_item_page(
    request: Request, session_id: int, item_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    item = service.get_lineup_item(live_session, item_id)
    return await _item_form(request, session, live_session, item_id, FormState.from_item(LINEUP_TERMS, item))


async def _item_form(
    request: Request,
    session: AsyncSession,
    live_session: LiveSession,
    item_id: int,
    state: FormState,
    *,
    status_code: int = 200,
) -> Response:
    t = translator(request)
    item = service.get_lineup_item(live_session, item_id)
    return await render_form(
        request,
        session,
        title=t("live.lineup.edit_title", name=item.product.name),
        fields=LINEUP_TERMS,
        state=state,
        action=f"{BASE}/{live_session.id}/lineup/{item_id}/edit",
        cancel_href=f"{BASE}/{live_session.id}#lineup",
        status_code=status_code,
    )


@router.post(f"{BASE}/{{session_id}}/lineup/{{item_id}}/edit")
async def edit_item_submit(
    request: Request, session_id: int, item_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    item = service.get_lineup_item(live_session, item_id)
    state = await read_form(request, LINEUP_TERMS)
    saved = await submit(
        request,
        session,
        state,
        LineupItemUpdate,
        lambda data: service.update_lineup_item(session, live_session, item, data, actor=operator),
        fields=LINEUP_TERMS,
    )
    if saved is None:
        live_session = await service.get_session(session, session_id, fresh=True)
        return await _item_form(request, session, live_session, item_id, state, status_code=422)
    return flash_redirect(
        request, f"{BASE}/{session_id}#lineup", translator(request)("live.flash.item_saved")
    )


@router.post(f"{BASE}/{{session_id}}/lineup/{{item_id}}/remove")
async def remove_item_submit(
    request: Request, session_id: int, item_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    item = service.get_lineup_item(live_session, item_id)
    outcome: list[str] = []

    async def action() -> None:
        outcome.append(await service.remove_lineup_item(session, live_session, item, actor=operator))

    response = await _act(request, session, f"{BASE}/{session_id}#lineup", "live.flash.item_removed", action)
    if outcome == ["archived"]:
        return flash_redirect(
            request, f"{BASE}/{session_id}#lineup", translator(request)("live.flash.item_archived")
        )
    return response


@router.post(f"{BASE}/{{session_id}}/lineup/{{item_id}}/move")
async def move_item_submit(
    request: Request, session_id: int, item_id: int, session: SessionDep, operator: PageOperator
) -> Response:
    live_session = await service.get_session(session, session_id)
    item = service.get_lineup_item(live_session, item_id)
    step = -1 if (await request.form()).get("step") == "-1" else 1
    return await _act(
        request,
        session,
        f"{BASE}/{session_id}#lineup",
        "live.flash.reordered",
        lambda: service.move_lineup_item(session, live_session, item, step, actor=operator),
    )


# The room's pages (neighbours and hosts) live in ``room_pages``.
router.include_router(room_router)
