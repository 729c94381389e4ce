"""One settings object for the whole platform, read from ``LINLI_*`` environment variables."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINLI_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    # Where outside parties (a payment processor's notifications) reach this app.
    public_base_url: str = "http://127.0.0.1:8000"
    database_url: str = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'linli.db'}"
    # PostgreSQL connections each process keeps (requests beyond them wait): processes × this must stay
    # under the server's max_connections.
    database_pool_size: int = Field(default=32, ge=1, le=500)
    redis_url: str | None = None
    redis_prefix: str = "linli"
    var_dir: Path = PROJECT_ROOT / "var"
    secret_key: str | None = None
    debug: bool = False
    # Cookies only travel over HTTPS when true; the embedded default serves plain HTTP on loopback.
    secure_cookies: bool = False
    default_locale: str = "zh-CN"
    time_zone: str = "Asia/Shanghai"

    # identity
    login_code_ttl_seconds: int = 300
    login_code_max_attempts: int = 5
    login_code_sender: str = "console"
    session_ttl_days: int = 30
    # Seconds a process may remember who is behind a token (0: look it up on every request). Logouts and
    # role changes are forgotten at once in the process that made them, and through the hub elsewhere.
    auth_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    rate_code_per_phone_per_minute: int = 1
    rate_code_per_phone_per_hour: int = 5
    rate_code_per_client_per_hour: int = 30
    rate_verify_per_phone_per_10min: int = 10
    rate_verify_per_client_per_10min: int = 50

    # uploads
    max_image_bytes: int = 5 * 1024 * 1024
    max_image_pixels: int = 40_000_000

    # orders: how long an unpaid order holds its units
    order_reservation_minutes: int = Field(default=10, ge=1, le=24 * 60)

    # background work
    run_workers_in_app: bool = True
    consumer_poll_seconds: float = 0.5
    consumer_batch_size: int = 200
    consumer_max_attempts: int = 5
    # A consumer that yields to requests (group counts, referral attribution, poster planning) waits
    # while this process serves at least ``consumer_yield_in_flight`` requests, but never longer than
    # ``consumer_yield_seconds`` between two of its batches.
    consumer_yield_in_flight: int = Field(default=8, ge=1)
    consumer_yield_seconds: float = Field(default=5.0, ge=0, le=300)
    job_poll_seconds: float = 0.5
    job_lease_seconds: int = 60

    # community: WeCom group robots (企业微信群机器人). A robot's webhook URL must start with this base
    # (a local receiver's in tests); 20 messages a minute per robot is WeCom's documented limit.
    wecom_webhook_base: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    wecom_rate_per_minute: int = Field(default=20, ge=1)
    wecom_max_attempts: int = Field(default=6, ge=1)
    wecom_retry_base_seconds: float = Field(default=5.0, gt=0)
    wecom_timeout_seconds: float = Field(default=5.0, gt=0)

    seed_demo: bool = True
    log_json: bool = Field(default=False, description="Emit JSON log lines instead of console output")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def media_dir(self) -> Path:
        return self.var_dir / "media"

    def resolved_secret_key(self) -> str:
        """The signing key: configured, or generated once and kept under ``var/``."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
