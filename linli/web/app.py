"""The application: every domain's routes, pages and background work assembled into one ASGI app."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from linli import catalog, community, groupbuy, identity, live, orders, referral
from linli.core.config import Settings, get_settings
from linli.core.consumers import ensure_cursors
from linli.core.errors import install_error_handlers
from linli.core.heap import settle_heap
from linli.core.i18n import catalog as messages
from linli.core.i18n import negotiate
from linli.core.observability import RequestGauge, RequestIdMiddleware, configure_logging
from linli.core.runtime import Runtime
from linli.core.templating import register_templates
from linli.core.worker import BackgroundWorker
from linli.web import pages as web_pages
from linli.web.routing import index_routes

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent
DOMAINS = (identity, catalog, community, live, orders, groupbuy, referral)
ANON_COOKIE = "linli_aid"
LANG_COOKIE = "linli_lang"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _register_ui() -> None:
    register_templates(WEB_DIR / "templates")
    messages.load_dir(WEB_DIR / "locales")
    for domain in DOMAINS:
        base = Path(domain.__file__).parent  # type: ignore[arg-type]
        if (base / "templates").is_dir():
            register_templates(base / "templates")
        if (base / "locales").is_dir():
            messages.load_dir(base / "locales")


def register_background_work(runtime: Runtime) -> None:
    """Each domain adds its consumers and timer kinds (``register_background(runtime)`` in its package)."""
    for domain in DOMAINS:
        register = getattr(domain, "register_background", None)
        if register is not None:
            register(runtime)


def create_app(
    settings: Settings | None = None, *, runtime: Runtime | None = None, server_process: bool = False
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(json=settings.log_json)
    _register_ui()
    requests = RequestGauge()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or Runtime.from_settings(settings)
        register_background_work(rt)
        await rt.start()
        await ensure_cursors(rt.db, rt.consumers)
        app.state.runtime = rt
        app.state.worker = None
        if settings.run_workers_in_app:
            app.state.worker = BackgroundWorker(rt, requests=requests)
            app.state.worker.start()
        if server_process:
            settle_heap()
        try:
            yield
        finally:
            if app.state.worker is not None:
                await app.state.worker.stop()
            for domain in DOMAINS:
                shutdown = getattr(domain, "shutdown_background", None)
                if shutdown is not None:
                    await shutdown(rt)
            if runtime is None:
                await rt.close()

    app = FastAPI(
        title="Linli 邻里",
        version="0.1.0",
        description="Watch → buy → share, in the brand's own private domain.",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)

    app.add_middleware(ShellContextMiddleware, secure_cookies=settings.secure_cookies)
    app.add_middleware(RequestIdMiddleware, gauge=requests)

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> JSONResponse:
        """Liveness and database reachability."""
        rt: Runtime = request.app.state.runtime
        try:
            async with rt.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse(
            {"status": "ok", "database": rt.db.engine.dialect.name, "hub": type(rt.hub).__name__}
        )

    routers = []
    for domain in DOMAINS:
        for module_name in ("api", "pages"):
            module = getattr(domain, module_name, None)
            if module is None:
                module = __import__(f"{domain.__name__}.{module_name}", fromlist=["router"])
            routers.append(module.router)
    routers.append(web_pages.router)
    add_routes(app, routers)

    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    app.mount("/media", StaticFiles(directory=settings.media_dir), name="media")
    index_routes(app.router.routes)
    return app


def _plain_routes(router: APIRouter) -> list[BaseRoute] | None:
    """Every route of ``router`` and of the routers it includes, in matching order — or None when an
    inclusion adds something of its own (a prefix, dependencies, tags) that only FastAPI can apply."""
    routes: list[BaseRoute] = []
    for route in router.routes:
        inner = getattr(route, "original_router", None)
        if inner is None:
            routes.append(route)
            continue
        context = getattr(route, "include_context", None)
        if context is None or context.prefix or context.dependencies or context.tags:
            return None
        nested = _plain_routes(inner)
        if nested is None:
            return None
        routes.extend(nested)
    return routes


def add_routes(app: FastAPI, routers: list[APIRouter]) -> None:
    """Add the domains' routes straight to the app's own router, in the same order.

    ``include_router`` keeps each router as a lazily resolved branch that FastAPI walks twice per
    request (to match, then to handle), re-deriving its route contexts as it goes: with ~280 routes in
    a dozen nested routers that was a fifth of the CPU of a short API request. The routes themselves
    already carry their router's prefix, tags and dependencies, so a flat list matches the same way."""
    for router in routers:
        routes = _plain_routes(router)
        if routes is None:
            app.include_router(router)
        else:
            app.router.routes.extend(routes)


class ShellContextMiddleware:
    """Locale, the anonymous id cookie, and a same-origin check on cookie-authenticated writes.

    Plain ASGI rather than ``@app.middleware("http")``: the decorator form runs every request through an
    extra task and stream, which costs real CPU on hot paths such as posting a comment."""

    def __init__(self, app: ASGIApp, *, secure_cookies: bool) -> None:
        self.app = app
        self.secure_cookies = secure_cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        # Most requests (API calls, posts) carry no query string: skip parsing one.
        requested = request.query_params.get("lang") if scope.get("query_string") else None
        locale = negotiate(requested or request.cookies.get(LANG_COOKIE))
        anonymous_id = request.cookies.get(ANON_COOKIE) or ""
        fresh_anonymous = not (8 <= len(anonymous_id) <= 64 and anonymous_id.isascii())
        if fresh_anonymous:
            anonymous_id = secrets.token_urlsafe(16)
        request.state.locale = locale
        request.state.anonymous_id = anonymous_id
        if request.method in UNSAFE_METHODS and not _same_origin(request):
            refusal = JSONResponse(
                {"error": "CrossOriginRequest", "detail": "cross-site form posts are refused"},
                status_code=403,
            )
            await refusal(scope, receive, send)
            return
        cookies = Response()
        if fresh_anonymous:
            cookies.set_cookie(
                ANON_COOKIE,
                anonymous_id,
                max_age=2 * 365 * 86400,
                httponly=True,
                samesite="lax",
                secure=self.secure_cookies,
            )
        if requested:
            cookies.set_cookie(LANG_COOKIE, locale, max_age=365 * 86400, samesite="lax")
        extra = [(k, v) for k, v in cookies.raw_headers if k == b"set-cookie"]
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_cookies)


def _same_origin(request: Request) -> bool:
    """Bearer-token API calls carry no ambient credentials; cookie writes must come from our pages."""
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return True
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        # Non-browser clients send neither; browsers always send Origin on cross-site POSTs.
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")
