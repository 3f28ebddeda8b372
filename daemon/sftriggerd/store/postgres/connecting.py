"""How the store connects: the options every connection gets (its own and the pool's), and
what each pooled connection sets when it opens.

Keepalives. A connection whose server vanished without a word (a host lost, a network cut, a
NAT or load balancer that forgot the flow) stays open on our side for as long as nothing is
sent: the wake-up listener, which only ever waits, would wait forever and wake nobody again
(the dispatchers' timed look still finds the work, only later), and a pooled connection would
fail only when next used. With TCP keepalives the kernel probes an idle connection and ends it
after `keepalives_idle + keepalives_interval * keepalives_count` seconds of silence (60 s
here), the listener's wait fails and it reconnects. A URL that sets any of these keeps its own.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict

# Seconds to wait for the server when opening a connection.
CONNECT_TIMEOUT = 10
KEEPALIVES: dict[str, int] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
# The server ends a transaction left idle this long. A leader frozen mid-ingest (SIGSTOP, a VM
# pause) holds its lease row FOR SHARE inside that transaction, and a takeover must wait for
# it; without this limit it would wait until the frozen process thawed. Our transactions run
# their statements back to back, so only a stalled process comes near it. Behind PgBouncer in
# transaction mode a session setting does not follow the client: docs/operations.md (PgBouncer)
# has it set on the role instead.
IDLE_IN_TRANSACTION_TIMEOUT = "5s"


def connection_options(url: str, prepared_statements: bool = True) -> dict[str, Any]:
    """Keyword options for `AsyncConnection.connect` (and the pool's `kwargs`) with `url`:
    autocommit, the connect timeout and the keepalives the URL does not set itself.

    `prepared_statements` false: psycopg never prepares a statement on the server (by default
    it does from the fifth run of one on a connection). A pooler in transaction mode hands each
    transaction to any server connection, where a statement prepared on another one is
    missing, or one of the same name exists already."""
    try:
        given = conninfo_to_dict(url)
    except (psycopg.Error, ValueError):
        given = {}  # libpq refuses the URL: connecting will say so, whatever we add
    options: dict[str, Any] = {"autocommit": True}
    if not prepared_statements:
        options["prepare_threshold"] = None
    if "connect_timeout" not in given:
        options["connect_timeout"] = CONNECT_TIMEOUT
    options.update({key: value for key, value in KEEPALIVES.items() if key not in given})
    return options


async def configure(conn: AsyncConnection[Any]) -> None:
    """Run on each new connection of the pool."""
    await conn.execute(
        "SELECT set_config('idle_in_transaction_session_timeout', %s, false)",
        (IDLE_IN_TRANSACTION_TIMEOUT,),
    )
