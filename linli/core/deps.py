"""Typed dependencies at the edge: the request's transaction, settings and runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.config import Settings
from linli.core.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # ``async`` on purpose, here and below: FastAPI runs a plain ``def`` dependency in a worker thread,
    # a thread hand-off on every request for what is an attribute read.
    return runtime_of(request)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one transaction, committed by this dependency after the handler returns.

    A second use in the same request (a dependency declared differently) gets the same session: two
    transactions in one request would deadlock on SQLite, where a transaction holds the write lock."""
    existing = getattr(request.state, "db_session", None)
    if existing is not None:
        yield existing
        return
    runtime = runtime_of(request)
    async for session in runtime.db.session():
        request.state.db_session = session
        try:
            yield session
        finally:
            request.state.db_session = None
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.poke()


async def get_settings_dep(request: Request) -> Settings:
    return runtime_of(request).settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": commit before the response is sent, so a failed commit is an error response and
# never a 200 for a write that did not happen.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
