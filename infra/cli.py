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
# The roles of api.auth.Role (infra does not import api); tests/api/test_authorization.py keeps them equal.
KEY_ROLES = ("integration", "channel", "csr", "admin")
TENANT_ROLES = ("integration", "channel")
# `orchestrator dev` keeps its admin key's token here (under ORCH_DATA_DIR), so it survives restarts.
DEV_KEY_FILE = "dev-api-key"
DEV_KEY_NAME = "dev-admin"


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

    keys = commands.add_parser("keys", help="API keys: create (the token is printed once), revoke, list")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    create = keys_commands.add_parser("create", help="create a key and print its token (shown only this once)")
    create.add_argument("--name", required=True, help="who uses it; recorded as the actor of every change")
    create.add_argument("--role", required=True, choices=list(KEY_ROLES))
    create.add_argument("--tenant", help="the integration or channel it acts for (integration and channel roles)")
    revoke = keys_commands.add_parser("revoke", help="revoke a key (at once; it cannot be undone)")
    revoke.add_argument("key_id")
    keys_commands.add_parser("list", help="list keys (never their secrets)")
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
        "keys": _keys,
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


# --- API keys ---------------------------------------------------------------------------------------------


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    if args.keys_command == "create":
        if args.role in TENANT_ROLES and not args.tenant:
            print(f"a {args.role} key needs --tenant (the integration or channel it acts for)", file=sys.stderr)
            return EXIT_USAGE
        if args.role not in TENANT_ROLES and args.tenant:
            print(
                f"a {args.role} key sees every tenant: --tenant is only for integration and channel keys",
                file=sys.stderr,
            )
            return EXIT_USAGE
    return asyncio.run(_keys_async(args, settings.require_database_url()))


async def _keys_async(args: argparse.Namespace, database_url: str) -> int:
    from infra.db.engine import create_engine, session_factory
    from infra.db.uow import uow_factory

    engine = create_engine(database_url, pool_size=1)
    try:
        uow = uow_factory(session_factory(engine))()
        async with uow:
            if args.keys_command == "create":
                created = await uow.api_keys.create(name=args.name, role=args.role, tenant=args.tenant)
                await uow.commit()
                print(f"created {created.record.key_id} ({args.role}) for {args.name}; its token, shown only once:")
                print(created.token)
                return EXIT_OK
            if args.keys_command == "revoke":
                record = await uow.api_keys.revoke(args.key_id)
                await uow.commit()
                if record is None:
                    print(f"no key {args.key_id}", file=sys.stderr)
                    return EXIT_FAILURE
                print(f"revoked {record.key_id} ({record.role}, {record.name}) at {record.revoked_at}")
                return EXIT_OK
            for key in await uow.api_keys.all():
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
                used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
                print(
                    f"{key.key_id}  {key.role:<11}  {key.tenant or '-':<16}  {state:<24}  used {used:<16}  {key.name}"
                )
            return EXIT_OK
    finally:
        await engine.dispose()


def ensure_dev_key(database_url: str, token_file: Path) -> str:
    """The dev admin key's token: the one kept in ``token_file`` while it still works, else a new one (kept)."""
    kept = token_file.read_text().strip() if token_file.exists() else None
    token = asyncio.run(_dev_key(database_url, kept))
    if token != kept:
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
    return token


async def _dev_key(database_url: str, kept: str | None) -> str:
    from infra.db.engine import create_engine, session_factory
    from infra.db.uow import uow_factory

    engine = create_engine(database_url, pool_size=1)
    try:
        async with uow_factory(session_factory(engine))() as uow:
            if kept is not None and await uow.api_keys.authenticate(kept) is not None:
                await uow.commit()
                return kept
            created = await uow.api_keys.create(name=DEV_KEY_NAME, role="admin", tenant=None)
            await uow.commit()
            return created.token
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
        dev_token = ensure_dev_key(database_url, data_dir / DEV_KEY_FILE)

        for name in ("simulator", "worker", "api", "dispatcher"):
            children.append(orchestrator_process(name, [name], env).start())
        wait_for_port(settings.simulator_port, timeout_s=30, process=children[0].process)
        wait_for_port(settings.api_port, timeout_s=30, process=children[2].process)
        _print_banner(settings, data_dir, dev_token)
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


def _print_banner(settings: Settings, data_dir: Path, dev_token: str) -> None:
    lines = [
        "",
        "  Order orchestrator is running. Ctrl-C stops everything.",
        f"  API            http://127.0.0.1:{settings.api_port}        (docs: /docs)",
        f"  Simulator      http://127.0.0.1:{settings.simulator_port}  (releases: /wms/releases)",
    ]
    if settings.embedded_temporal:
        lines.append(f"  Temporal UI    http://127.0.0.1:{settings.temporal_ui_port}")
        lines.append(f"  Temporal gRPC  127.0.0.1:{settings.temporal_port}")
    lines += [
        f"  Data           {data_dir}",
        f"  Admin API key  {dev_token}",
        f"                 (kept in {data_dir / DEV_KEY_FILE}; more keys: orchestrator keys create --help)",
        "  Try it:",
        f"    curl -H 'Authorization: Bearer {dev_token}' http://127.0.0.1:{settings.api_port}/inventory",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
