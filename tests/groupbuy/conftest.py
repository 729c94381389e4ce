from __future__ import annotations

import pytest

from linli.core.db import Database
from tests.groupbuy.factories import Town, make_town


@pytest.fixture
async def town(db: Database) -> Town:
    return await make_town(db)


# The payments harness (the app's sandbox processor, its notifications delivered back by durable jobs).
from tests.orders.payments.conftest import pay, payment_settings  # noqa: E402, F401
