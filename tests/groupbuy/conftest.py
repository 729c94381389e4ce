from __future__ import annotations

import pytest

from linli.core.db import Database
from tests.groupbuy.factories import Town, make_town


@pytest.fixture
async def town(db: Database) -> Town:
    return await make_town(db)
