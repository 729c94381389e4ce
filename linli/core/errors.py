"""The one error type every domain derives from, and the handler that turns it into JSON."""

from __future__ import annotations

from typing import Any, ClassVar


class LinliError(Exception):
    """A failure a client can act on: carries its own message and HTTP status."""

    status_code: ClassVar[int] = 400

    def __init__(self, message: str, *, status_code: int | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code  # type: ignore[misc]
        self.context = context

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.name, "detail": self.message}
        if self.context:
            body["context"] = self.context
        return body


class BadRequest(LinliError):
    status_code = 400


class NotAuthenticated(LinliError):
    status_code = 401


class Forbidden(LinliError):
    status_code = 403


class NotFound(LinliError):
    status_code = 404


class Conflict(LinliError):
    status_code = 409


class Unprocessable(LinliError):
    status_code = 422


class PayloadTooLarge(LinliError):
    status_code = 413


class UnsupportedMediaType(LinliError):
    status_code = 415


class Redirect(LinliError):
    """Not a failure: sends the browser elsewhere (a page that needs a login sends it to /login)."""

    status_code = 303

    def __init__(self, location: str) -> None:
        super().__init__(f"see {location}")
        self.location = location


class TooManyRequests(LinliError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int = 60, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


def _validation_detail(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc}: {error.get('msg')}" if loc else str(error.get("msg")))
    return "; ".join(parts)


def install_error_handlers(app: Any) -> None:
    """Every failure becomes ``{"error", "detail"}`` (API) or the error page (pages), never a bare 500."""
    import logging

    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, RedirectResponse, Response

    log = logging.getLogger("linli.errors")

    def respond(
        request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Response:
        wants_html = not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
            "accept", ""
        )
        if wants_html:
            from linli.core.templating import render

            return render(request, "error.html", {"error": body}, status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(LinliError)
    async def linli_error(request: Request, exc: LinliError) -> Response:
        if isinstance(exc, Redirect):
            return RedirectResponse(exc.location, status_code=exc.status_code)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        return respond(request, exc.status_code, exc.to_dict(), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        body = {
            "error": "ValidationError",
            "detail": _validation_detail(errors),
            "context": {"errors": errors},
        }
        return respond(request, 422, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        names = {
            404: "NotFound",
            405: "MethodNotAllowed",
            401: "NotAuthenticated",
            403: "Forbidden",
        }
        body = {"error": names.get(exc.status_code, "HTTPError"), "detail": str(exc.detail)}
        return respond(request, exc.status_code, body, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"error": "InternalError", "detail": "something went wrong; it has been logged"}
        return respond(request, 500, body)
