"""Payment settings, read from ``LINLI_PAYMENTS_*`` and ``LINLI_WECHATPAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class PaymentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_PAYMENTS_", env_file=".env", extra="ignore")

    # The sandbox lets anyone "pay" without money: turn it off wherever real money is taken.
    sandbox_enabled: bool = True
    # The sandbox behaves like a real processor: notifications come late, sometimes twice, and sometimes
    # an earlier state ("failed", "pending") arrives after the success.
    sandbox_delay_seconds: float = 1.0
    sandbox_duplicate_rate: float = 0.3
    sandbox_stale_rate: float = 0.3
    # Notifications older (or newer) than this are refused as replays.
    notification_window_seconds: int = 300
    # How often a notification is sent before the sender gives up (backoff 2, 4, 8 s ... up to an hour).
    delivery_max_attempts: int = 15
    refund_max_attempts: int = 12


class WechatPaySettings(BaseSettings):
    """A merchant's WeChat Pay API v3 credentials; the provider is enabled only when all are set."""

    model_config = SettingsConfigDict(env_prefix="LINLI_WECHATPAY_", env_file=".env", extra="ignore")

    mchid: str | None = None
    appid: str | None = None
    # The merchant API certificate's serial number and its private key (apiclient_key.pem).
    serial_no: str | None = None
    private_key_path: Path | None = None
    # The WeChat Pay public key (or platform certificate) that signs notifications and responses, and
    # its id as sent in ``Wechatpay-Serial``.
    platform_public_key_path: Path | None = None
    platform_serial: str | None = None
    apiv3_key: str | None = None
    api_base_url: str = "https://api.mch.weixin.qq.com"
    timeout_seconds: float = 10.0

    @property
    def configured(self) -> bool:
        return all(
            (
                self.mchid,
                self.appid,
                self.serial_no,
                self.private_key_path,
                self.platform_public_key_path,
                self.platform_serial,
                self.apiv3_key,
            )
        )
