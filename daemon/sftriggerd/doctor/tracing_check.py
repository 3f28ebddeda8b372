"""Doctor's line on tracing: whether the OTEL_* variables turn it on, and whether this
install can do what they ask. The tracer is built as `sftriggerd run` builds it, so whatever
the SDK refuses shows here, then closed unused: the collector is not contacted (spans are
sent in the background, and a collector that is down never holds a delivery)."""

from __future__ import annotations

from collections.abc import Mapping

from ..tracing.setup import configure
from .checks import Check, ok, warning

NAME = "tracing"


async def check_tracing(environ: Mapping[str, str]) -> Check:
    traces, found = configure(environ)
    await traces.close()
    if found.problem is not None:
        # A warning: the daemon runs and delivers, only untraced.
        return warning(
            NAME,
            f"asked for but will not start: {found.problem}",
            "fix the OTEL_* variables, or unset them to run without traces",
        )
    return ok(NAME, found.describe())
