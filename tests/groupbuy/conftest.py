from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from linli.core.db import Database
from linli.orders.payments.providers.wechatpay import WechatPayProvider
from tests.groupbuy.factories import Town, make_town
from tests.orders.payments.wechat_fake import FakeWechatPay, Keys


@pytest.fixture
async def town(db: Database) -> Town:
    return await make_town(db)


# The payments harness (the app's sandbox processor, its notifications delivered back by durable jobs).
from tests.orders.payments.conftest import pay, payment_settings  # noqa: E402, F401


# WeChat Pay, against the payments tests' fake (locally generated keys, no outside traffic).
@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture
def fake(keys: Keys) -> FakeWechatPay:
    return FakeWechatPay(keys)


@pytest.fixture
async def wechat(keys: Keys, fake: FakeWechatPay) -> AsyncIterator[WechatPayProvider]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app()), base_url="https://api.mch.weixin.qq.com"
    ) as client:
        yield WechatPayProvider(keys.credentials(), client)
