"""The ``linli`` command line: serve, migrate, seed the demo brand, create operators, run the worker."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from linli.core.config import get_settings

app = typer.Typer(
    help="Linli 邻里 — watch → buy → share, in the brand's own private domain.", no_args_is_help=True
)
console = Console()


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url


@app.command()
def migrate(revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (default: the newest)."""
    from linli.core.migrate import upgrade

    settings = get_settings()
    with console.status(f"Migrating {_redact(settings.database_url)} …"):
        upgrade(settings.database_url, revision)
    console.print(f"[green]✓[/] schema at {revision}")


@app.command("seed-demo")
def seed_demo(force: bool = typer.Option(False, help="Seed even if the database already has data")) -> None:
    """Seed the demo brand 麦香邻里 (stores, communities, products, the 春日青团节 session, demo accounts)."""
    from linli.simulate.demo import print_demo_accounts, seed_demo_brand

    settings = get_settings()
    seeded = asyncio.run(seed_demo_brand(settings, force=force, console=console))
    if not seeded:
        console.print("[yellow]The database already has data; nothing seeded (use --force).[/]")
    print_demo_accounts(console)


@app.command("create-operator")
def create_operator(
    phone: Annotated[str, typer.Argument(help="Mainland mobile number, 11 digits")],
    nickname: str = typer.Option("运营", help="Display name"),
) -> None:
    """Create an operator account (or grant the operator role to an existing user)."""
    from linli.core.errors import LinliError
    from linli.simulate.demo import grant_operator

    settings = get_settings()
    try:
        user_id = asyncio.run(grant_operator(settings, phone, nickname))
    except LinliError as exc:
        console.print(f"[red]{exc.message}[/]")
        raise typer.Exit(2) from exc
    console.print(f"[green]✓[/] user {user_id} ({phone}) is an operator; log in at /login with a phone code")


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default LINLI_HOST or 127.0.0.1)"),
    port: int = typer.Option(None, help="Port (default LINLI_PORT or 8000)"),
    workers: int = typer.Option(1, help="App processes; use PostgreSQL and Redis when more than one"),
    seed: bool = typer.Option(True, help="Seed the demo brand on an empty database"),
) -> None:
    """Migrate, seed the demo brand on an empty database, and serve the platform."""
    import uvicorn

    from linli.simulate.demo import print_demo_accounts, seed_demo_brand

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if workers > 1 and (settings.is_sqlite or not settings.redis_url):
        console.print("[red]Several processes need LINLI_DATABASE_URL (PostgreSQL) and LINLI_REDIS_URL.[/]")
        raise typer.Exit(2)
    migrate()
    if seed and settings.seed_demo:
        asyncio.run(seed_demo_brand(settings, force=False, console=console))
        print_demo_accounts(console)
    table = Table(show_header=False, box=None)
    table.add_row("neighbour home", f"http://{host}:{port}/")
    table.add_row("admin console", f"http://{host}:{port}/admin")
    table.add_row("API docs", f"http://{host}:{port}/docs")
    table.add_row("database", _redact(settings.database_url))
    table.add_row("pub/sub", "Redis" if settings.redis_url else "in-process")
    console.print(table)
    uvicorn.run(
        "linli.web.main:app",
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        # Room frames go out pre-serialised to thousands of sockets: no per-connection compressor.
        ws_per_message_deflate=False,
        log_config=None,
    )


@app.command()
def worker() -> None:
    """Run the event consumers and durable timers outside the app processes.

    Start app processes with LINLI_RUN_WORKERS_IN_APP=false when you run this."""
    from linli.core.heap import settle_heap
    from linli.core.observability import configure_logging
    from linli.core.runtime import Runtime
    from linli.core.worker import BackgroundWorker
    from linli.web.app import register_background_work

    settings = get_settings()
    configure_logging(json=settings.log_json)

    async def main() -> None:
        runtime = Runtime.from_settings(settings)
        register_background_work(runtime)
        await runtime.start()
        background = BackgroundWorker(runtime)
        background.start()
        settle_heap()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        console.print(
            f"[green]worker running[/]: {len(runtime.consumers.consumers)} consumers, "
            f"{len(runtime.jobs.handlers)} timer kinds"
        )
        await stop.wait()
        await background.stop()
        await runtime.close()

    asyncio.run(main())


if __name__ == "__main__":
    app()
