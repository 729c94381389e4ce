"""Generic admin console pages: searchable paginated lists and create/edit forms built from field specs.

The whole API:

- ``Field(name, label, kind="text"|"textarea"|"money"|"int"|"datetime"|"select"|"checkbox", required=...,
  choices=...)`` is one form input; ``Column(label, value, kind="text"|"money"|"time"|"thumb", link=...)``
  one list column. Labels are message keys (``"catalog.field.name"``); a select's choices are
  ``(value, label)`` pairs or ``async (session) -> pairs``, a label being a key, plain text or ``Label(key,
  params)``. Money is typed in yuan and parsed to fen; datetimes are typed as Shanghai wall clock → UTC.
- ``mount(router, AdminResource(path=, title=, noun=, fields=, columns=, create_schema=, update_schema=,
  fetch=, get=, create=, update=, archive=, unarchive=, guard=))`` registers, under ``path``: the list
  (``?q=&archived=1&page=``), ``new`` and ``{id}/edit`` (GET form, POST save → 303 with a flash message),
  and POST ``{id}/archive`` / ``{id}/unarchive`` (form field ``next`` = where to go back). The callables
  are the domain's service verbs, unchanged (see the ``ListFetcher`` … ``Archiver`` protocols).
- For hand-written pages: ``read_form`` + ``submit`` (validate into a schema, run the service verb in a
  savepoint, collect errors), ``render_form``, ``render_list``, ``render_admin`` (shows the flash message)
  and ``flash_redirect``. The templates are ``admin/list.html`` and ``admin/form.html`` (extend them and
  fill ``after_form`` / ``table``); ``admin/_macros.html`` has ``field_input``, ``archive_button``, …

Errors are shown next to the field they belong to: a pydantic error by its location, a ``LinliError`` by its
``field=`` context (``raise LeaderRoleMissing("...", field="leader_id")``), anything else above the form.
A failed save rolls back its savepoint, so a bad form writes nothing, and re-renders with status 422; the
rollback expires what the verb had touched, so reload a record (``get``) before rendering it again.
Rows shown in lists and edited in forms need an ``id`` and an ``archived_at`` attribute.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from linli.core.clock import from_local, to_local
from linli.core.deps import get_session, runtime_of
from linli.core.errors import LinliError
from linli.core.money import format_fen, parse_yuan
from linli.core.templating import render, translator

T = TypeVar("T")
FieldKind = Literal["text", "textarea", "money", "int", "datetime", "select", "checkbox"]
ColumnKind = Literal["text", "money", "time", "thumb"]
ChoiceList = Sequence[tuple[str, "str | Label"]]
ChoicesLoader = Callable[[AsyncSession], Awaitable[ChoiceList]]

FLASH_COOKIE = "linli_flash"
FORM_ERROR = ""  # the errors key for a message that belongs to no single field
DATETIME_INPUT = "%Y-%m-%dT%H:%M"


@dataclass(frozen=True)
class Label:
    """A choice label that needs parameters: ``Label("community.archived_choice", {"name": "梧桐苑"})``."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Field:
    """One form input. ``choices`` (for ``select``) are (value, label) pairs or an async loader of them;
    a label is a message key, plain text or a :class:`Label`. ``blank`` is the label key of an empty first
    choice. A stored value missing from the choices is still offered (as "#value"), so saving a form never
    silently changes a field the person did not touch."""

    name: str
    label: str
    kind: FieldKind = "text"
    required: bool = False
    hint: str | None = None
    choices: ChoiceList | ChoicesLoader | None = None
    blank: str | None = None
    max_length: int | None = None
    wide: bool = False

    def display(self, value: Any) -> str:
        """A stored value as the text its input shows (fen as yuan, UTC as Shanghai wall clock)."""
        if value is None:
            return ""
        if self.kind == "money" and isinstance(value, int):
            return format_fen(value, symbol="")
        if self.kind == "datetime" and isinstance(value, datetime):
            return to_local(value).strftime(DATETIME_INPUT)
        if self.kind == "checkbox":
            return "1" if value else ""
        return str(value)


@dataclass(frozen=True)
class Column:
    """One list column: ``value`` is an attribute name or a function of the row."""

    label: str
    value: str | Callable[[Any], Any]
    kind: ColumnKind = "text"
    link: bool = False

    def cell(self, row: Any) -> Any:
        return getattr(row, self.value) if isinstance(self.value, str) else self.value(row)


@dataclass(frozen=True)
class ListQuery:
    """What a list page was asked for: ``?q=`` search, ``archived=1`` and ``page=`` (1-based)."""

    q: str = ""
    include_archived: bool = False
    page: int = 1
    per_page: int = 20

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @classmethod
    def from_request(cls, request: Request, *, per_page: int = 20) -> ListQuery:
        params = request.query_params
        page = params.get("page", "1")
        return cls(
            q=params.get("q", "").strip()[:100],
            include_archived=params.get("archived") in ("1", "on", "true"),
            page=min(max(int(page), 1), 10_000) if page.isdigit() and len(page) < 6 else 1,
            per_page=per_page,
        )

    def link(self, base: str, **change: Any) -> str:
        """``base`` with this query's parameters, some changed (for pager links)."""
        values = {"q": self.q, "archived": "1" if self.include_archived else "", "page": self.page}
        values.update(change)
        query = urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})
        return f"{base}?{query}" if query else base


@dataclass
class FormState:
    """A form in flight: what was typed (to show again), the parsed data, and the errors by field."""

    values: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_item(cls, fields: Sequence[Field], item: Any) -> FormState:
        return cls(values={f.name: f.display(getattr(item, f.name, None)) for f in fields})

    @classmethod
    def from_query(cls, fields: Sequence[Field], request: Request) -> FormState:
        """A new form, prefilled from the query string (``new?community_id=3``)."""
        params = request.query_params
        return cls(values={f.name: params[f.name] for f in fields if f.name in params})


# -- service verbs, as the machinery calls them ---------------------------------------------------------


class ListFetcher(Protocol):
    def __call__(
        self, session: AsyncSession, /, *, q: str, include_archived: bool, offset: int, limit: int
    ) -> Awaitable[tuple[Sequence[Any], int]]: ...


class Getter(Protocol):
    def __call__(self, session: AsyncSession, item_id: int, /) -> Awaitable[Any]: ...


class Creator(Protocol):
    def __call__(self, session: AsyncSession, data: Any, /, *, actor_id: int | None) -> Awaitable[Any]: ...


class Updater(Protocol):
    def __call__(
        self, session: AsyncSession, item_id: int, data: Any, /, *, actor_id: int | None
    ) -> Awaitable[Any]: ...


class Archiver(Protocol):
    def __call__(self, session: AsyncSession, item_id: int, /, *, actor_id: int | None) -> Awaitable[Any]: ...


@dataclass(frozen=True)
class AdminResource:
    """Everything :func:`mount` needs to serve one kind of record's admin pages."""

    path: str  # "/admin/products"
    title: str  # message key of the list page's title
    noun: str  # message key for one record ("新建{noun}")
    fields: Sequence[Field]
    columns: Sequence[Column]
    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    fetch: ListFetcher
    get: Getter
    create: Creator
    update: Updater
    # The dependency that admits the person and returns them (their ``id`` becomes the actor).
    guard: Callable[..., Any]
    archive: Archiver | None = None
    unarchive: Archiver | None = None
    form_template: str = "admin/form.html"
    list_template: str = "admin/list.html"
    # Extra template context for the form (``item`` is None on the new page).
    extra_context: Callable[[AsyncSession, Any | None], Awaitable[dict[str, Any]]] | None = None
    # Where to go after a save; the list by default.
    saved_url: Callable[[Any], str] | None = None
    per_page: int = 20


# -- forms ----------------------------------------------------------------------------------------------


async def read_form(request: Request, fields: Sequence[Field], form: FormData | None = None) -> FormState:
    """Read the posted form into a :class:`FormState`: yuan → fen, Shanghai time → UTC, blanks → None.

    Text stays as typed (the schema trims it); a required field left blank is an error here."""
    t = translator(request)
    form = form if form is not None else await request.form()
    state = FormState()
    for f in fields:
        raw = form.get(f.name)
        text = raw if isinstance(raw, str) else ""
        state.values[f.name] = text
        if f.kind == "checkbox":
            state.data[f.name] = text not in ("", "0", "off", "false")
            continue
        if f.kind in ("text", "textarea"):
            state.data[f.name] = text
            if f.required and not text.strip():
                state.errors[f.name] = t("admin.ui.required")
            continue
        if not text.strip():
            state.data[f.name] = None
            if f.required:
                state.errors[f.name] = t("admin.ui.required")
            continue
        try:
            state.data[f.name] = _parse(f, text.strip())
        except (LinliError, ValueError):
            state.errors[f.name] = t(f"admin.ui.bad_{f.kind}")
    return state


def _parse(f: Field, text: str) -> Any:
    if f.kind == "money":
        return parse_yuan(text)
    if f.kind == "int":
        return int(text)
    if f.kind == "datetime":
        return from_local(datetime.fromisoformat(text))
    return text


async def submit(
    request: Request,
    session: AsyncSession,
    state: FormState,
    schema: type[BaseModel],
    action: Callable[[Any], Awaitable[T]],
    *,
    fields: Sequence[Field] = (),
) -> T | None:
    """Validate ``state.data`` into ``schema`` and run ``action(data)`` in a savepoint.

    Returns the action's result, or None with ``state.errors`` filled — and nothing written."""
    if state.errors:
        return None
    try:
        data = schema.model_validate(state.data)
    except ValidationError as exc:
        _collect_validation_errors(request, state, exc, fields)
        return None
    try:
        async with session.begin_nested():
            return await action(data)
    except LinliError as exc:
        target = exc.context.get("field")
        state.errors[target if isinstance(target, str) and target in state.values else FORM_ERROR] = (
            exc.message
        )
        return None


def _collect_validation_errors(
    request: Request, state: FormState, exc: ValidationError, fields: Sequence[Field]
) -> None:
    t = translator(request)
    kinds = {f.name: f.kind for f in fields}
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc and str(loc[0]) in state.values else FORM_ERROR
        params: dict[str, Any] = dict(error.get("ctx") or {})
        if kinds.get(name) == "money":
            params = {k: format_fen(v) if type(v) is int else v for k, v in params.items()}
        key = f"admin.ui.errors.{error['type']}"
        message = t(key, **params) if params else t(key)
        if message == key:
            message = str(error.get("msg", "")).removeprefix("Value error, ")
        state.errors.setdefault(name, message)


async def resolve_choices(session: AsyncSession, fields: Sequence[Field]) -> dict[str, ChoiceList]:
    """The choices of every select field, loaders awaited."""
    resolved: dict[str, ChoiceList] = {}
    for f in fields:
        if f.choices is None:
            continue
        resolved[f.name] = await f.choices(session) if callable(f.choices) else f.choices
    return resolved


async def render_form(
    request: Request,
    session: AsyncSession,
    *,
    title: str,
    fields: Sequence[Field],
    state: FormState,
    action: str,
    cancel_href: str,
    template: str = "admin/form.html",
    item: Any = None,
    base_path: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A form page: the fields with their values and errors, the form-level error above them."""
    ctx = {
        "title": title,
        "fields": fields,
        "values": state.values,
        "errors": state.errors,
        "form_error": state.errors.get(FORM_ERROR),
        "choices": await resolve_choices(session, fields),
        "action": action,
        "cancel_href": cancel_href,
        "item": item,
        "base_path": base_path,
        **context,
    }
    return render_admin(request, template, ctx, status_code=status_code)


# -- lists ----------------------------------------------------------------------------------------------


def render_list(
    request: Request,
    *,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Any],
    total: int,
    query: ListQuery,
    base_path: str,
    new_href: str | None = None,
    noun: str = "",
    archivable: bool = True,
    template: str = "admin/list.html",
    **context: Any,
) -> HTMLResponse:
    """A list page: search box, include-archived toggle, the rows, archive buttons and a pager."""
    pages = max((total + query.per_page - 1) // query.per_page, 1)
    ctx = {
        "title": title,
        "columns": columns,
        "rows": rows,
        "total": total,
        "query": query,
        "pages": pages,
        "base_path": base_path,
        "new_href": new_href,
        "noun": noun,
        "archivable": archivable,
        **context,
    }
    return render_admin(request, template, ctx)


# -- flash messages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flash:
    text: str
    kind: Literal["ok", "error"] = "ok"


def _flash_serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(runtime_of(request).settings.resolved_secret_key(), salt="linli.flash")


def flash_redirect(
    request: Request, url: str, text: str, *, kind: Literal["ok", "error"] = "ok"
) -> RedirectResponse:
    """303 to ``url``, carrying a one-time message shown by the next :func:`render_admin` page."""
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLASH_COOKIE,
        _flash_serializer(request).dumps({"text": text, "kind": kind}),
        max_age=120,
        httponly=True,
        samesite="lax",
        secure=runtime_of(request).settings.secure_cookies,
    )
    return response


def pop_flash(request: Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = _flash_serializer(request).loads(raw)
    except BadSignature:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return None
    return Flash(text=value["text"], kind="error" if value.get("kind") == "error" else "ok")


def render_admin(
    request: Request, template: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    """``render`` plus the pending flash message, which is then cleared."""
    ctx = dict(context or {})
    if "flash" not in ctx:
        ctx["flash"] = pop_flash(request)
    response = render(request, template, ctx, status_code=status_code)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="lax")
    return response


def safe_next(value: Any, default: str) -> str:
    """A local path to go back to, never another site."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


# -- the standard routes --------------------------------------------------------------------------------


def mount(router: APIRouter, resource: AdminResource) -> None:
    """Register the list, new, edit, archive and unarchive pages of ``resource`` on ``router``."""
    r = resource
    guard = Depends(r.guard)
    session_dep = Depends(get_session, scope="function")

    def actor(user: Any) -> int | None:
        return getattr(user, "id", None)

    def saved(item: Any) -> str:
        return r.saved_url(item) if r.saved_url is not None else r.path

    async def extra(session: AsyncSession, item: Any) -> dict[str, Any]:
        return await r.extra_context(session, item) if r.extra_context is not None else {}

    async def form_page(
        request: Request, session: AsyncSession, state: FormState, item: Any, status_code: int = 200
    ) -> HTMLResponse:
        t = translator(request)
        heading = (
            t("admin.ui.edit_title", noun=t(r.noun)) if item else t("admin.ui.new_title", noun=t(r.noun))
        )
        return await render_form(
            request,
            session,
            title=heading,
            fields=r.fields,
            state=state,
            action=f"{r.path}/{item.id}/edit" if item else f"{r.path}/new",
            cancel_href=r.path,
            template=r.form_template,
            item=item,
            base_path=r.path,
            archivable=r.archive is not None,
            status_code=status_code,
            **await extra(session, item),
        )

    @router.get(r.path, include_in_schema=False)
    async def list_page(request: Request, session: AsyncSession = session_dep, user: Any = guard) -> Response:
        query = ListQuery.from_request(request, per_page=r.per_page)
        rows, total = await r.fetch(
            session,
            q=query.q,
            include_archived=query.include_archived,
            offset=query.offset,
            limit=query.per_page,
        )
        return render_list(
            request,
            title=r.title,
            columns=r.columns,
            rows=rows,
            total=total,
            query=query,
            base_path=r.path,
            new_href=f"{r.path}/new",
            noun=r.noun,
            archivable=r.archive is not None,
            template=r.list_template,
        )

    @router.get(f"{r.path}/new", include_in_schema=False)
    async def new_page(request: Request, session: AsyncSession = session_dep, user: Any = guard) -> Response:
        return await form_page(request, session, FormState.from_query(r.fields, request), None)

    @router.post(f"{r.path}/new", include_in_schema=False)
    async def create_submit(
        request: Request, session: AsyncSession = session_dep, user: Any = guard
    ) -> Response:
        state = await read_form(request, r.fields)
        item = await submit(
            request,
            session,
            state,
            r.create_schema,
            lambda data: r.create(session, data, actor_id=actor(user)),
            fields=r.fields,
        )
        if item is None:
            return await form_page(request, session, state, None, status_code=422)
        t = translator(request)
        return flash_redirect(request, saved(item), t("admin.ui.created", noun=t(r.noun)))

    @router.get(f"{r.path}/{{item_id}}/edit", include_in_schema=False)
    async def edit_page(
        request: Request, item_id: int, session: AsyncSession = session_dep, user: Any = guard
    ) -> Response:
        item = await r.get(session, item_id)
        return await form_page(request, session, FormState.from_item(r.fields, item), item)

    @router.post(f"{r.path}/{{item_id}}/edit", include_in_schema=False)
    async def edit_submit(
        request: Request, item_id: int, session: AsyncSession = session_dep, user: Any = guard
    ) -> Response:
        item = await r.get(session, item_id)
        state = await read_form(request, r.fields)
        saved_item = await submit(
            request,
            session,
            state,
            r.update_schema,
            lambda data: r.update(session, item_id, data, actor_id=actor(user)),
            fields=r.fields,
        )
        if saved_item is None:
            # The rolled-back savepoint expired whatever the verb had touched; load it afresh.
            item = await r.get(session, item_id)
            return await form_page(request, session, state, item, status_code=422)
        t = translator(request)
        return flash_redirect(request, saved(saved_item), t("admin.ui.saved", noun=t(r.noun)))

    def archive_route(verb: Archiver, message_key: str, suffix: str) -> None:
        async def handler(
            request: Request, item_id: int, session: AsyncSession = session_dep, user: Any = guard
        ) -> Response:
            form = await request.form()
            back = safe_next(form.get("next"), r.path)
            t = translator(request)
            try:
                async with session.begin_nested():
                    await verb(session, item_id, actor_id=actor(user))
            except LinliError as exc:
                return flash_redirect(request, back, exc.message, kind="error")
            return flash_redirect(request, back, t(message_key, noun=t(r.noun)))

        router.add_api_route(
            f"{r.path}/{{item_id}}/{suffix}",
            handler,
            methods=["POST"],
            include_in_schema=False,
            name=f"{r.path.strip('/').replace('/', '_')}_{suffix}",
        )

    if r.archive is not None:
        archive_route(r.archive, "admin.ui.archived_flash", "archive")
    if r.unarchive is not None:
        archive_route(r.unarchive, "admin.ui.unarchived_flash", "unarchive")
