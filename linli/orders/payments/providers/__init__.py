"""The providers this installation offers, one instance each per runtime.

Built from settings on first use: the sandbox (unless turned off) and WeChat Pay (only when configured).
Tests and the simulator put their own in ``runtime.extras[PROVIDERS_KEY]`` — a WeChat Pay provider
whose HTTP client talks to a fake server, say — and the app uses those."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.runtime import Runtime
from linli.orders.payments.config import PaymentSettings, WechatPaySettings
from linli.orders.payments.errors import UnknownProvider
from linli.orders.payments.providers.base import PaymentProvider
from linli.orders.payments.providers.sandbox import SandboxProvider, process_cashier_action, sandbox_secret
from linli.orders.payments.providers.wechatpay import WechatPayCredentials, WechatPayProvider

PROVIDERS_KEY = "orders.payments.providers"
SETTINGS_KEY = "orders.payments.settings"
WECHATPAY_SETTINGS_KEY = "orders.payments.wechatpay_settings"
# The HTTP client the sandbox processor sends its notifications with.
DELIVERY_CLIENT_KEY = "orders.payments.delivery_client"

NOTIFY_PATH = "/api/v1/payments/notify/{provider}"


def payment_settings(runtime: Runtime) -> PaymentSettings:
    settings: PaymentSettings | None = runtime.extras.get(SETTINGS_KEY)
    if settings is None:
        settings = runtime.extras[SETTINGS_KEY] = PaymentSettings()
    return settings


def notify_url(runtime: Runtime, provider: str) -> str:
    return runtime.settings.public_base_url.rstrip("/") + NOTIFY_PATH.format(provider=provider)


def get_providers(runtime: Runtime) -> dict[str, PaymentProvider]:
    providers: dict[str, PaymentProvider] | None = runtime.extras.get(PROVIDERS_KEY)
    if providers is None:
        providers = runtime.extras[PROVIDERS_KEY] = _build(runtime)
    return providers


def get_provider(runtime: Runtime, name: str) -> PaymentProvider:
    provider = get_providers(runtime).get(name)
    if provider is None:
        raise UnknownProvider(f"no payment provider {name[:40]!r} here")
    return provider


def get_sandbox(runtime: Runtime) -> SandboxProvider:
    provider = get_providers(runtime).get(SandboxProvider.name)
    if not isinstance(provider, SandboxProvider):
        raise UnknownProvider("the sandbox provider is turned off here")
    return provider


def delivery_client(runtime: Runtime) -> httpx.AsyncClient:
    client: httpx.AsyncClient | None = runtime.extras.get(DELIVERY_CLIENT_KEY)
    if client is None:
        client = runtime.extras[DELIVERY_CLIENT_KEY] = httpx.AsyncClient(timeout=10.0)
    return client


def _build(runtime: Runtime) -> dict[str, PaymentProvider]:
    settings = payment_settings(runtime)
    providers: dict[str, PaymentProvider] = {}
    if settings.sandbox_enabled:
        providers[SandboxProvider.name] = SandboxProvider(
            sandbox_secret(runtime.settings.resolved_secret_key()),
            window_seconds=settings.notification_window_seconds,
            db=runtime.db,
        )
    wechat: WechatPaySettings | None = runtime.extras.get(WECHATPAY_SETTINGS_KEY)
    wechat = wechat or WechatPaySettings()
    if wechat.configured:
        providers[WechatPayProvider.name] = WechatPayProvider(
            WechatPayCredentials.from_settings(wechat),
            httpx.AsyncClient(timeout=wechat.timeout_seconds),
            base_url=wechat.api_base_url,
            window_seconds=settings.notification_window_seconds,
        )
    return providers


async def sandbox_cashier_action(
    runtime: Runtime, session: AsyncSession, *, out_trade_no: str, amount_fen: int, succeed: bool
) -> bool:
    """The neighbour tapped 支付 (``succeed``) or 支付失败 on the sandbox cashier: the sandbox processor
    schedules its notifications (after this transaction commits). False when it had already been paid."""
    sandbox = get_sandbox(runtime)
    settings = payment_settings(runtime)
    return await process_cashier_action(
        session,
        secret=sandbox.secret,
        out_trade_no=out_trade_no,
        amount_fen=amount_fen,
        succeed=succeed,
        delay_seconds=settings.sandbox_delay_seconds,
        duplicate_rate=settings.sandbox_duplicate_rate,
        stale_rate=settings.sandbox_stale_rate,
        max_attempts=settings.delivery_max_attempts,
    )
