"""What one running Linli process holds: settings, database, hub, and the registered background work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from linli.core.config import Settings
from linli.core.consumers import ConsumerRegistry
from linli.core.db import Database
from linli.core.hub import Hub, create_hub
from linli.core.jobs import JobRegistry


@dataclass
class Runtime:
    settings: Settings
    db: Database
    hub: Hub
    consumers: ConsumerRegistry = field(default_factory=ConsumerRegistry)
    jobs: JobRegistry = field(default_factory=JobRegistry)
    # Domain-owned singletons (the login code sender, ...), keyed by the owning domain's name.
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.database_url, pool_size=settings.database_pool_size),
            hub=create_hub(settings.redis_url, prefix=settings.redis_prefix),
        )

    async def start(self) -> None:
        await self.hub.start()

    async def close(self) -> None:
        await self.hub.close()
        await self.db.dispose()
