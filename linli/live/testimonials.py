"""Testimonials in the room (滚动证言): approved neighbour reviews roll on each product card and in the
checkout sheet, the viewer's own community first ("XX花园的李姐: ..."). The reviews are the community
feed's (``/api/v1/reviews``); this adds a footer section to the room page with the lineup's product ids
and ``static/js/live/testimonials.js``, which decorates the cards and the sheet without touching
``room.js`` or ``checkout.js``."""

from __future__ import annotations

import json

from fastapi import Request
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.service import membership_of
from linli.core.templating import translator
from linli.identity.models import User
from linli.live.models import LiveSession
from linli.live.room_pages import register_room_section


async def testimonials_section(
    request: Request, session: AsyncSession, live_session: LiveSession, user: User | None
) -> Markup | None:
    products = {str(item.id): item.product_id for item in live_session.lineup if item.archived_at is None}
    if not products:
        return None
    membership = await membership_of(session, user.id) if user is not None else None
    t = translator(request)
    data = {
        "products": products,
        "community_id": membership.community_id if membership else None,
        "label": t("live.testimonials.label"),
    }
    return Markup(
        '<div id="live-testimonials" data-testid="live-testimonials" hidden data-config="{}"></div>'
        '<script type="module" src="/static/js/live/testimonials.js"></script>'
    ).format(escape(json.dumps(data, ensure_ascii=False)))


def register() -> None:
    register_room_section("footer", testimonials_section, position=60)
