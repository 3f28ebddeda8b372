"""The demo's parts as processes of their own, for deploy/compose/compose.yaml:

    python -m sftriggerd_emulator.demo receiver [--host H] [--port N]
    python -m sftriggerd_emulator.demo changes --emulator URL --admin URL

`receiver` serves the sample receiver at /webhook and prints each delivery whose Standard
Webhooks signature verifies with the `whsec_` secret in $WEBHOOK_SECRET (an environment
variable, so the secret stays out of the process list); others get 401. `changes` waits for
the daemon's /readyz at `--admin`, then creates or updates a record of the emulator's org
every second, as `sftriggerd demo` does. Both stop on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from aiohttp import web

from sftriggerd.config.settings import decode_secret

from .receiver import receiver_app
from .run import make_changes, print_delivery


def _receiver(args: argparse.Namespace) -> int:
    try:
        key = decode_secret(os.environ.get("WEBHOOK_SECRET", ""))
    except ValueError as exc:
        print(f"WEBHOOK_SECRET {exc}", file=sys.stderr)
        return 2
    print(f"receiver listening on http://{args.host}:{args.port}/webhook", flush=True)
    # run_app stops on SIGTERM and SIGINT.
    web.run_app(
        receiver_app(key, print_delivery),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
    )
    return 0


def _changes(args: argparse.Namespace) -> int:
    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        print(f"changing records at {args.emulator} once {args.admin}/readyz is ready", flush=True)
        await make_changes(args.emulator.rstrip("/"), args.admin.rstrip("/"), stopping)

    asyncio.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sftriggerd_emulator.demo")
    commands = parser.add_subparsers(dest="command", required=True)
    receiver = commands.add_parser("receiver", help="the sample receiver, printing deliveries")
    receiver.add_argument("--host", default="127.0.0.1")
    receiver.add_argument("--port", type=int, default=9000)
    receiver.set_defaults(handler=_receiver)
    changes = commands.add_parser("changes", help="a record created or updated every second")
    changes.add_argument("--emulator", required=True, help="the emulator's URL")
    changes.add_argument("--admin", required=True, help="the daemon's admin URL")
    changes.set_defaults(handler=_changes)
    args = parser.parse_args(argv)
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
