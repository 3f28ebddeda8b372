"""Outcomes on PostgreSQL: each applied only while its claim holds the lease, many in one
transaction (group commit), each recorded one with its row in the attempt history."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from ..records import Claim, Dead, Delivered, Outcome, Retry
from .text import optional_readable

# One statement for the batch. finished_at comes from the database clock; a delivery
# appears once per lease token in `v` (see `record_outcomes`): each row names its claim.
_APPLY = """
    UPDATE deliveries d
    SET status = v.status, attempts = d.attempts + 1,
        next_attempt_at = sftriggerd_now() + v.delay, last_status = v.last_status,
        last_error = v.error, lease_token = NULL,
        finished_at = CASE WHEN v.status IN ('delivered', 'dead') THEN sftriggerd_now() END
    FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::interval[], %s::integer[],
                %s::text[]) AS v(id, token, status, delay, last_status, error)
    WHERE d.id = v.id AND d.lease_token = v.token AND d.status = 'in_flight'
    RETURNING d.id, v.token
"""
_HISTORY = """
    INSERT INTO attempts (delivery_id, at, duration_ms, status, error, answer, next_attempt_at)
    SELECT v.id, coalesce(v.at, sftriggerd_now()), v.duration_ms, v.status, v.error, v.answer,
           sftriggerd_now() + v.delay
    FROM unnest(%s::bigint[], %s::timestamptz[], %s::integer[], %s::integer[], %s::text[],
                %s::text[], %s::interval[]) WITH ORDINALITY
         AS v(id, at, duration_ms, status, error, answer, delay, n)
    ORDER BY v.n
"""

Columns = tuple[str, timedelta | None, int | None, str | None]


def columns(outcome: Outcome) -> Columns:
    """status, delay until the next attempt (a retry's), last status, error."""
    if isinstance(outcome, Delivered):
        return "delivered", None, outcome.status, None
    if isinstance(outcome, Retry):
        return "pending", outcome.delay, outcome.status, outcome.error
    assert isinstance(outcome, Dead)
    return "dead", None, outcome.status, outcome.error


def _attempt_time(outcome: Outcome) -> datetime | None:
    """When the attempt started, as the sender measured it; None: the store's clock."""
    return outcome.trace.started_at if outcome.trace else None


def _duration(outcome: Outcome) -> int | None:
    return outcome.trace.duration_ms if outcome.trace else None


async def record_outcomes(
    conn: AsyncConnection[Any], items: Sequence[tuple[Claim, Outcome]]
) -> list[bool]:
    # The same claim twice in one batch: only its first outcome can hold the lease.
    first: dict[tuple[int, str], int] = {}
    for index, (claim, _) in enumerate(items):
        first.setdefault((claim.delivery_id, claim.lease_token), index)
    unique = [items[index] for index in sorted(first.values())]
    cols = [columns(outcome) for _, outcome in unique]
    async with conn.transaction():
        cursor = await conn.execute(
            _APPLY,
            (
                [claim.delivery_id for claim, _ in unique],
                [claim.lease_token for claim, _ in unique],
                [c[0] for c in cols],
                [c[1] for c in cols],
                [c[2] for c in cols],
                [optional_readable(c[3]) for c in cols],
            ),
        )
        applied = {(int(row[0]), str(row[1])) for row in await cursor.fetchall()}
        recorded = [
            (claim, outcome, col)
            for (claim, outcome), col in zip(unique, cols, strict=True)
            if (claim.delivery_id, claim.lease_token) in applied
        ]
        if recorded:
            await conn.execute(
                _HISTORY,
                (
                    [claim.delivery_id for claim, _, _ in recorded],
                    [_attempt_time(outcome) for _, outcome, _ in recorded],
                    [
                        outcome.trace.duration_ms if outcome.trace else None
                        for _, outcome, _ in recorded
                    ],
                    [outcome.status for _, outcome, _ in recorded],
                    [optional_readable(col[3]) for _, _, col in recorded],
                    [
                        optional_readable(outcome.trace.answer) if outcome.trace else None
                        for _, outcome, _ in recorded
                    ],
                    [col[1] for _, _, col in recorded],
                ),
            )
    return [
        first[(claim.delivery_id, claim.lease_token)] == index
        and (claim.delivery_id, claim.lease_token) in applied
        for index, (claim, _) in enumerate(items)
    ]


Apply = Callable[[Sequence[tuple[Claim, Outcome]]], Awaitable[list[bool]]]


class GroupCommit:
    """Outcomes arriving while a batch commits wait, and go together in the next transaction:
    one commit (one WAL flush on the server) covers many deliveries under load."""

    def __init__(self, apply: Apply) -> None:
        self._apply = apply
        self._waiting: list[tuple[Sequence[tuple[Claim, Outcome]], asyncio.Future[list[bool]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, outcomes: Sequence[tuple[Claim, Outcome]]) -> list[bool]:
        if not outcomes:
            return []
        future: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcomes, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        # Shielded: a caller cancelled at shutdown must not leave the outcome half-known.
        return await asyncio.shield(future)

    async def drain(self) -> None:
        """Waits for the batches already submitted (before closing)."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            items = [item for outcomes, _ in batch for item in outcomes]
            try:
                results = await self._apply(items)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for outcomes, future in batch:
                if not future.done():
                    future.set_result(results[start : start + len(outcomes)])
                start += len(outcomes)
