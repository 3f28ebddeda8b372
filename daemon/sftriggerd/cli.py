"""The `sftriggerd` command line (the commands are listed in the README).

Exit codes: 0 success, 2 bad configuration or usage, 1 runtime failure. Expected failures
print one line each to stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__, cli_replay, commands, commands_transfer
from . import commands_deliveries as delivery_commands
from .config import Settings, load_settings
from .daemon import run_daemon
from .errors import ConfigError, NotAvailableError, SftriggerdError
from .logs import configure_logging, get_logger, redactor
from .tracing import Tracing
from .tracing.setup import configure as configure_tracing

log = get_logger(__name__)

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"sftriggerd: {exc}", file=sys.stderr)
        return exc.exit_code
    except SftriggerdError as exc:
        print(f"sftriggerd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sftriggerd", description="Salesforce record changes to signed webhooks."
    )
    parser.add_argument("--version", action="version", version=f"sftriggerd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon until SIGTERM/SIGINT")
    _config_option(run)
    run.set_defaults(handler=_run)

    check = commands.add_parser("check-config", help="validate a configuration file offline")
    _config_option(check)
    check.set_defaults(handler=_check_config)

    doctor = commands.add_parser(
        "doctor", help="check the configuration against the org, the endpoints and the store"
    )
    _config_option(doctor)
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(handler=_doctor)

    emulator = commands.add_parser(
        "emulator", help="run the Salesforce emulator (needs the emulator extra)"
    )
    emulator.add_argument("--port", type=int, required=True)
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--state", type=Path, default=None, help="keep the org's data here")
    emulator.add_argument("--users", type=Path, default=None, help="YAML file of extra users")
    emulator.add_argument(
        "--pubsub-port",
        type=int,
        default=None,
        help="also serve the Pub/Sub API (gRPC, plaintext) on this port (0: any free port)",
    )
    emulator.set_defaults(handler=_emulator)

    demo = commands.add_parser("demo", help="emulator + receiver + daemon, all in one")
    demo.set_defaults(handler=_demo)

    _add_deliveries(commands)
    triggers = commands.add_parser("triggers", help="inspect triggers")
    triggers_commands = triggers.add_subparsers(dest="action", required=True)
    status = triggers_commands.add_parser("status", help="mode, checkpoint and lag per trigger")
    _config_option(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_triggers_status)
    cli_replay.add_trigger_commands(triggers_commands)

    migrate = commands.add_parser("migrate", help="create or upgrade the store schema")
    _config_option(migrate)
    migrate.set_defaults(handler=_migrate)

    moving = commands.add_parser(
        "migrate-store",
        help="copy a whole store into an empty one (SQLite to PostgreSQL); stop the daemon first",
    )
    moving.add_argument("--from", dest="source", required=True, metavar="URL")
    moving.add_argument("--to", dest="target", required=True, metavar="URL")
    moving.add_argument("--json", action="store_true", help="machine-readable summary")
    moving.set_defaults(handler=_migrate_store)
    return parser


def _add_deliveries(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deliveries = commands.add_parser("deliveries", help="inspect and redrive the outbox")
    actions = deliveries.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list deliveries")
    _config_option(listing)
    listing.add_argument("--status", choices=["pending", "in_flight", "delivered", "dead"])
    listing.add_argument("--endpoint", help="one configured endpoint")
    listing.add_argument(
        "--limit", type=delivery_commands.limit_arg, default=100, help="1 to 1000, newest first"
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_deliveries_list)
    show = actions.add_parser("show", help="one delivery: its event and every attempt")
    show.add_argument("id", type=delivery_commands.delivery_id_arg, metavar="ID")
    _config_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_deliveries_show)
    redrive = actions.add_parser("redrive", help="put dead deliveries back in the queue")
    _config_option(redrive)
    redrive.add_argument("--id", type=delivery_commands.delivery_id_arg)
    redrive.add_argument("--endpoint")
    redrive.add_argument(
        "--status", choices=["dead"], help="with --endpoint: dead, the only kind that redrives"
    )
    cli_replay.add_delivery_commands(actions, redrive)  # resend; redrive by time range


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, metavar="PATH")


def _not_available(command: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        raise NotAvailableError(f"'{command}' is not available in this version")

    return handler


def _check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    print(
        f"{args.config}: ok ({len(settings.triggers)} triggers, "
        f"{len(settings.endpoints)} endpoints, store {settings.store.engine})"
    )
    exposed = settings.salesforce.pubsub_plaintext_warning
    if exposed is not None and any(t.resolved_transport == "pubsub" for t in settings.triggers):
        print(f"warning: {exposed}")
    for endpoint in settings.endpoints:
        if len(endpoint.secret) > 1:
            # A rollover left half done keeps signing with the old secret for ever.
            print(
                f"endpoint {endpoint.name}: signs with {len(endpoint.secret)} secrets; remove "
                "the old one once every receiver verifies with the new (docs/secret-rotation.md)"
            )
    if "ha" in settings.model_fields_set and settings.store.engine == "sqlite":
        # Allowed so one file can move between stores; said so nobody expects a failover.
        print(
            "note: ha has no effect on a sqlite store (one process owns the file); "
            "it applies to several replicas on a postgresql:// store"
        )
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import report, run_doctor
    from .doctor.checks import healthy

    settings = load_settings(args.config)
    # Quiet: the report is the output; the client's own logs would interleave with it.
    configure_logging("error", "console")
    redactor.remember(settings.secrets())
    # The login line names the user, whose name may contain the password (the emulator's).
    redactor.remember_public([settings.salesforce.auth.username or ""])
    checks = asyncio.run(run_doctor(settings))
    print(report.as_json(checks) if args.json else report.as_text(checks))
    return 0 if healthy(checks) else 1


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    configure_logging(settings.logging.level, settings.logging.format)
    redactor.remember(settings.secrets())
    try:
        asyncio.run(_serve(settings))
    except SftriggerdError as exc:
        log.error("daemon_failed", error=str(exc))
        raise
    return 0


async def _serve(settings: Settings) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _request_stop, stopping, signum)
    await run_daemon(settings, stopping, traces=_tracing())


def _tracing() -> Tracing:
    """Tracing as the OTEL_* variables ask, reported once at start."""
    traces, plan = configure_tracing(os.environ, __version__)
    if plan.problem is not None:
        log.error("tracing_not_started", reason=plan.problem, asked=plan.describe())
    elif plan.wanted:
        log.info("tracing_started", exporting=plan.describe())
    return traces


def _migrate(args: argparse.Namespace) -> int:
    print(asyncio.run(commands.migrate(load_settings(args.config))))
    return 0


def _migrate_store(args: argparse.Namespace) -> int:
    print(asyncio.run(commands_transfer.migrate_store(args.source, args.target, args.json)))
    return 0


def _deliveries_list(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, inspect_only=True)
    delivery_commands.require_endpoint(settings, args.endpoint)
    print(
        asyncio.run(
            commands.list_deliveries(settings, args.status, args.endpoint, args.json, args.limit)
        )
    )
    return 0


def _deliveries_show(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, inspect_only=True)
    print(asyncio.run(delivery_commands.show_delivery(settings, args.id, args.json)))
    return 0


def emulator_required(command: str) -> None:
    """`emulator` and `demo` need the optional emulator package; say how to get it."""
    if importlib.util.find_spec("sftriggerd_emulator") is None:
        raise NotAvailableError(
            f"`sftriggerd {command}` needs the emulator, which is not installed here. In a "
            "clone of the repository: pip install '.[emulator]' (make demo does it for you); "
            f"from a built wheel: pip install 'sftriggerd-{__version__}-py3-none-any.whl[emulator]'"
        )


def _emulator(args: argparse.Namespace) -> int:
    # Imported here: the daemon core never imports the emulator, an optional package.
    emulator_required("emulator")
    from sftriggerd_emulator.context import EmulatorSettings
    from sftriggerd_emulator.server import run_emulator

    settings = EmulatorSettings(
        host=args.host, port=args.port, state_dir=args.state, pubsub_port=args.pubsub_port
    )
    try:
        asyncio.run(run_emulator(settings, args.users))
    except KeyboardInterrupt:
        pass
    return 0


def _demo(args: argparse.Namespace) -> int:
    emulator_required("demo")
    from sftriggerd_emulator.demo.run import run_demo

    configure_logging("warning", "console")

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await run_demo(stopping)

    asyncio.run(main())
    return 0


def _triggers_status(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, inspect_only=True)
    print(asyncio.run(commands.trigger_status(settings, args.json)))
    return 0


def _request_stop(stopping: asyncio.Event, signum: int) -> None:
    log.info("signal_received", signal=signal.Signals(signum).name)
    stopping.set()


if __name__ == "__main__":
    sys.exit(main())
