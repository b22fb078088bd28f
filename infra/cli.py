"""``orchestrator``: the command line for running and operating the orchestrator.

Exit codes scripts can trust: 0 success, 1 a failure the message explains, 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import structlog

from infra.logging import configure_logging
from infra.services import (
    EmbeddedPostgres,
    ManagedProcess,
    ServiceError,
    ensure_database,
    orchestrator_process,
    port_in_use,
    temporal_dev_server,
    wait_for_port,
)
from infra.settings import Settings, get_settings

log = structlog.get_logger("orchestrator")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
APP_DATABASE = "orchestrator"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Durable order orchestration on Temporal. Configuration comes from the environment "
        "(ORCH_* variables, plus DATABASE_URL and TEMPORAL_ADDRESS): see docs/operations.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser("dev", help="start the whole local stack and supervise it (what `make run` runs)")
    dev.add_argument("--no-seed", action="store_true", help="do not load the demo network on first start")

    api = commands.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", help="interface to bind (default: ORCH_API_HOST)")
    api.add_argument("--port", type=int, help="port to bind (default: ORCH_API_PORT)")

    commands.add_parser("worker", help="run a Temporal worker for the order workflows and activities")

    commands.add_parser("dispatcher", help="deliver outgoing order status events to subscribers (the outbox)")

    simulator = commands.add_parser("simulator", help="run the warehouse/carrier simulator")
    simulator.add_argument("--port", type=int, help="port to bind (default: ORCH_SIMULATOR_PORT)")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="apply Alembic migrations")
    upgrade.add_argument("revision", nargs="?", default="head")

    commands.add_parser("seed", help="load the demo network (idempotent: existing rows are left alone)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    service = "dev" if args.command == "dev" else args.command
    configure_logging(settings.log_format, settings.log_level, service=service)
    handlers: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        "dev": _dev,
        "api": _api,
        "worker": _worker,
        "dispatcher": _dispatcher,
        "simulator": _simulator,
        "db": _db,
        "seed": _seed,
    }
    try:
        return handlers[args.command](args, settings)
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as err:
        log.error(f"{args.command} failed: {err}", exc_info=settings.log_level.upper() == "DEBUG")
        return EXIT_FAILURE


# --- single services --------------------------------------------------------------------------------------


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    settings.require_database_url()
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_config=None,  # keep our structlog configuration
        access_log=False,
    )
    return EXIT_OK


def _worker(_: argparse.Namespace, settings: Settings) -> int:
    import worker

    asyncio.run(worker.run(settings))
    return EXIT_OK


def _dispatcher(_: argparse.Namespace, settings: Settings) -> int:
    from infra import dispatcher

    asyncio.run(dispatcher.run(settings))
    return EXIT_OK


def _simulator(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app

    app = create_simulator_app(
        SimulatorConfig(
            webhook_url=settings.api_public_url.rstrip("/") + "/webhooks/wms",
            webhook_secret=settings.webhook_secret.get_secret_value(),
            behaviour=Behaviour(step_delay_s=settings.simulator_step_delay_s),
        )
    )
    uvicorn.run(
        app, host=settings.simulator_host, port=args.port or settings.simulator_port, log_config=None, access_log=False
    )
    return EXIT_OK


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from infra.db.migrate import current_revision, upgrade

    database_url = settings.require_database_url()
    upgrade(database_url, args.revision)
    log.info("database schema migrated", requested=args.revision, current=current_revision(database_url))
    return EXIT_OK


def _seed(_: argparse.Namespace, settings: Settings) -> int:
    log.info(str(asyncio.run(_seed_database(settings.require_database_url()))))
    return EXIT_OK


async def _seed_database(database_url: str) -> object:
    from infra.db.engine import create_engine, session_factory
    from infra.db.uow import uow_factory
    from infra.seed import seed_demo_network, seed_demo_policy

    engine = create_engine(database_url, pool_size=1)
    try:
        uow = uow_factory(session_factory(engine))
        summary = await seed_demo_network(uow)
        policy = await seed_demo_policy(uow)
        return f"{summary}; routing policy: {policy or 'left as it was (a policy is already stored)'}"
    finally:
        await engine.dispose()


# --- the local stack --------------------------------------------------------------------------------------

MAX_RESTARTS_PER_MINUTE = 3


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _dev(args: argparse.Namespace, settings: Settings) -> int:
    """Start Postgres, Temporal, migrations, seed, simulator, worker, API and dispatcher; stop them all on Ctrl-C."""
    from infra.db.migrate import upgrade

    signal.signal(signal.SIGTERM, _raise_interrupt)
    data_dir = settings.data_dir.resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    postgres: EmbeddedPostgres | None = None
    temporal: ManagedProcess | None = None
    children: list[ManagedProcess] = []
    try:
        ports = [settings.api_port, settings.simulator_port]
        if settings.embedded_temporal:
            ports += [settings.temporal_port, settings.temporal_ui_port]
        busy = [p for p in ports if port_in_use(p)]
        if busy:
            raise ServiceError(f"port(s) {busy} already in use: is another `make run` still running?")

        if settings.embedded_postgres:
            log.info("starting embedded PostgreSQL", data=str(data_dir / "pg"))
            postgres = EmbeddedPostgres(data_dir / "pg")
            ensure_database(postgres.start(), APP_DATABASE)
            database_url = postgres.admin_url(APP_DATABASE)
        else:
            database_url = settings.require_database_url()
            log.info("using PostgreSQL from DATABASE_URL")
        env["DATABASE_URL"] = database_url

        if settings.embedded_temporal:
            log.info("starting Temporal dev server", data=str(data_dir / "temporal.db"))
            temporal = temporal_dev_server(
                port=settings.temporal_port,
                ui_port=settings.temporal_ui_port,
                db_file=data_dir / "temporal.db",
                log_path=data_dir / "logs" / "temporal.log",
                namespace=settings.temporal_namespace,
            ).start()
            wait_for_port(settings.temporal_port, timeout_s=60, process=temporal.process)
            env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{settings.temporal_port}"
            env["ORCH_TEMPORAL_UI_URL"] = f"http://127.0.0.1:{settings.temporal_ui_port}"
        else:
            log.info("using Temporal from TEMPORAL_ADDRESS", address=settings.temporal_address)

        log.info("applying database migrations")
        upgrade(database_url)
        if not args.no_seed:
            log.info(str(asyncio.run(_seed_database(database_url))))

        for name in ("simulator", "worker", "api", "dispatcher"):
            children.append(orchestrator_process(name, [name], env).start())
        wait_for_port(settings.simulator_port, timeout_s=30, process=children[0].process)
        wait_for_port(settings.api_port, timeout_s=30, process=children[2].process)
        _print_banner(settings, data_dir)
        _supervise(children)
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abandon the clean-up
        for child in reversed(children):
            code = child.stop()
            log.info(f"stopped {child.name}", exit_code=code)
        if temporal is not None:
            temporal.stop()
            log.info("stopped Temporal dev server")
        if postgres is not None:
            postgres.stop()
            log.info("stopped PostgreSQL")
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _supervise(children: list[ManagedProcess]) -> None:
    """Restart a child that dies; give up (and stop everything) if one keeps dying."""
    restarts: dict[str, list[float]] = {}
    while True:
        time.sleep(0.5)
        for child in children:
            if child.alive:
                continue
            now = time.monotonic()
            recent = [t for t in restarts.get(child.name, []) if now - t < 60] + [now]
            restarts[child.name] = recent
            code = child.process.returncode if child.process else None
            if len(recent) > MAX_RESTARTS_PER_MINUTE:
                raise RuntimeError(f"{child.name} keeps exiting (last code {code}); stopping the stack")
            log.warning(f"{child.name} exited with code {code}; restarting it")
            child.start()


def _print_banner(settings: Settings, data_dir: Path) -> None:
    lines = [
        "",
        "  Order orchestrator is running. Ctrl-C stops everything.",
        f"  API            http://127.0.0.1:{settings.api_port}        (docs: /docs)",
        f"  Simulator      http://127.0.0.1:{settings.simulator_port}  (releases: /wms/releases)",
    ]
    if settings.embedded_temporal:
        lines.append(f"  Temporal UI    http://127.0.0.1:{settings.temporal_ui_port}")
        lines.append(f"  Temporal gRPC  127.0.0.1:{settings.temporal_port}")
    lines += [f"  Data           {data_dir}", ""]
    print("\n".join(lines), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
