"""Users, phone-code login, sessions and tokens, roles, devices and anonymous ids."""

from __future__ import annotations

from linli.core.runtime import Runtime


def register_background(runtime: Runtime) -> None:
    """The ``identity.logins`` consumer: tells every process whose logins changed (their caches forget)."""
    from linli.identity.logins import CONSUMER, logins_consumer

    if CONSUMER not in runtime.consumers.consumers:
        runtime.consumers.add(logins_consumer(runtime.hub))


async def shutdown_background(runtime: Runtime) -> None:
    """Stop listening for other processes' login changes."""
    from linli.identity.logins import EXTRAS_KEY, LoginCache

    cache = runtime.extras.get(EXTRAS_KEY)
    if isinstance(cache, LoginCache):
        await cache.close()
