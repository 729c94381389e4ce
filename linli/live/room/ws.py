"""The room's WebSocket: ``/ws/live/{session_id}[?since=N][&token=...]``.

Anyone may watch; the session cookie (or ``?token=``, for clients without cookies) says who is watching,
which is what bans are checked against (with the browser's anonymous id). Posting goes through the HTTP
API; the socket itself takes only likes: ``{"type": "like", "n": 3}``.

Close codes: 4004 no such room, 4003 banned (do not reconnect), 4008 too slow (reconnect with ``since``).
"""

from __future__ import annotations

import contextlib
from typing import Annotated, cast

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from starlette.requests import Request

from linli.core.errors import NotFound
from linli.core.runtime import Runtime
from linli.identity.deps import token_from_cookie
from linli.identity.tokens import user_for_token
from linli.live.room.fanout import rooms_of, writer_for
from linli.live.room.messages import CLOSE_BANNED, CLOSE_NOT_FOUND, decode

router = APIRouter()

# The web shell's first-visit cookie (``linli.web.app.ANON_COOKIE``): the browser's anonymous id.
ANON_COOKIE = "linli_aid"


def _anonymous_id(websocket: WebSocket) -> str | None:
    value = websocket.cookies.get(ANON_COOKIE) or ""
    return value if 8 <= len(value) <= 64 and value.isascii() else None


async def _user_id(runtime: Runtime, websocket: WebSocket, token: str | None) -> int | None:
    # The cookie reader looks only at cookies and the app's state, which a WebSocket has too.
    token = token or token_from_cookie(cast(Request, websocket))
    if not token:
        return None
    async with runtime.db.sessionmaker() as session:
        user = await user_for_token(session, token)
        user_id = user.id if user is not None else None
        await session.rollback()
    return user_id


@router.websocket("/ws/live/{session_id}")
async def room_socket(
    websocket: WebSocket,
    session_id: int,
    since: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    token: Annotated[str | None, Query(max_length=200)] = None,
) -> None:
    runtime: Runtime = websocket.app.state.runtime
    registry = rooms_of(runtime)
    worker = getattr(websocket.app.state, "worker", None)
    registry.set_poke(worker.poke if worker is not None else None)
    await websocket.accept()
    if not 1 <= session_id <= 2**62:
        await websocket.close(CLOSE_NOT_FOUND, "no such live room")
        return
    user_id = await _user_id(runtime, websocket, token)
    anonymous_id = _anonymous_id(websocket)
    try:
        room = await registry.join(session_id)
    except NotFound:
        await websocket.close(CLOSE_NOT_FOUND, "no such live room")
        return
    if room.is_banned(user_id, anonymous_id):
        await websocket.close(CLOSE_BANNED, "removed from this live room")
        return
    viewer, first = room.admit(websocket, user_id, anonymous_id, since)
    try:
        # The first frame goes through ASGI: once it is out, so is the handshake, and from then on the
        # room may write to the socket directly.
        await websocket.send_text(first.text)
        room.activate(viewer, writer_for(websocket, room.config))
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if not text or len(text) > 200:
                continue
            with contextlib.suppress(ValueError, TypeError, KeyError):
                incoming = decode(text.encode())
                if incoming.get("type") == "like":
                    room.like(viewer, int(incoming.get("n", 1)))
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        room.leave(viewer)
