"""Server-rendered pages: one Jinja environment fed by every domain's templates folder."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from linli.core.clock import to_local
from linli.core.i18n import DEFAULT_LOCALE, catalog
from linli.core.money import format_fen

_loaders: list[BaseLoader] = []
_loader = ChoiceLoader(_loaders)
env = Environment(
    loader=_loader,
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def register_templates(directory: Path) -> None:
    loader = FileSystemLoader(str(directory))
    if all(getattr(existing, "searchpath", None) != loader.searchpath for existing in _loaders):
        _loaders.append(loader)


def _local_time(value: datetime | None, fmt: str = "%m月%d日 %H:%M") -> str:
    return "" if value is None else to_local(value).strftime(fmt)


class NavItem:
    def __init__(self, href: str, label: str, order: int) -> None:
        self.href, self.label, self.order = href, label, order


admin_nav: list[NavItem] = []


def register_admin_nav(href: str, label: str, order: int = 100) -> None:
    """Add an entry (``label`` is a message key) to the admin console's side menu."""
    if any(item.href == href for item in admin_nav):
        return
    admin_nav.append(NavItem(href, label, order))
    admin_nav.sort(key=lambda item: item.order)


env.globals["admin_nav"] = admin_nav
env.filters["fen"] = format_fen
env.filters["local"] = _local_time


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render ``name`` with the shell's context: the request, locale, current user and translator."""
    locale = getattr(request.state, "locale", DEFAULT_LOCALE)

    def t(key: str, **params: Any) -> str:
        return catalog.translate(locale, key, **params)

    full = {
        "request": request,
        "locale": locale,
        "t": t,
        "user": getattr(request.state, "user", None),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        **(context or {}),
    }
    html = env.get_template(name).render(full)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def translator(request: Request) -> Any:
    locale = getattr(request.state, "locale", DEFAULT_LOCALE)
    return lambda key, **params: catalog.translate(locale, key, **params)


def locale_of(request: Request) -> str:
    """The request's locale (``?lang=``, else the language cookie, else zh-CN): pages and JSON alike."""
    return str(getattr(request.state, "locale", DEFAULT_LOCALE))
