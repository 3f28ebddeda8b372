"""What tracing costs the durable path: the same deliveries with tracing off and on, side by
side in one run.

    .venv/bin/python benchmarks/tracing.py --events 5000 --rounds 3

Against the fast receiver of `delivery.py` (a process of its own), each round runs the durable
live leg twice on fresh SQLite stores, in alternating order: tracing off (the daemon's
default), and tracing on as `sftriggerd run` builds it from OTEL_* variables, but with an
exporter that counts spans and drops them, so the figure is the SDK's cost in this process
(span creation, context propagation, the batch processor's thread), not a collector's network.
With tracing on, every event's ingest stores its trace context and every attempt is a span
with a `traceparent` header. The source span (`receive`, one per batch of `--batch` events) is
not part of this leg: the benchmark feeds `Ingest` directly.

Prints rate and CPU per delivery for each, and on/off ratios: medians over the rounds.
Needs the otel extra (`pip install '.[otel]'`). No assertions: figures for people.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from delivery_stores import sqlite_engine
from delivery_workload import Figures, against_receiver, bench_event
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from delivery import durable, machine, parse
from sftriggerd import tracing
from sftriggerd.logs import configure_logging
from sftriggerd.tracing.otel import OtelTracing


class CountingExporter(SpanExporter):
    """Takes every batch and keeps only the count."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


async def one_leg(url: str, args: argparse.Namespace, directory: Path, on: bool) -> Figures:
    events = [bench_event(number, args.records or args.events) for number in range(args.events)]
    exporter = CountingExporter()
    traces: tracing.Tracing = tracing.Tracing()
    if on:
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        traces = OtelTracing(provider)
    tracing.use(traces)
    try:
        figures, _ = await durable(url, events, args, sqlite_engine(directory), backlog=False)
    finally:
        tracing.use(tracing.Tracing())
        await traces.close()
    if on:
        print(f"  (tracing on: {exporter.spans} spans exported)")
    return figures


async def run(url: str, args: argparse.Namespace) -> None:
    print(f"machine: {machine()}")
    print(f"workload: {args.events} events, durable live, ingest batch {args.batch}")
    off: list[Figures] = []
    on: list[Figures] = []
    for round_number in range(args.rounds):
        order = (False, True) if round_number % 2 == 0 else (True, False)
        for traced in order:
            with tempfile.TemporaryDirectory(dir=args.dir) as directory:
                figures = await one_leg(url, args, Path(directory), traced)
            (on if traced else off).append(figures)
            print(figures.line(f"round {round_number + 1}, tracing {'on ' if traced else 'off'}"))
    rate_off = statistics.median(f.rate for f in off)
    rate_on = statistics.median(f.rate for f in on)
    cpu_off = statistics.median(f.cpu_us for f in off)
    cpu_on = statistics.median(f.cpu_us for f in on)
    print(
        f"medians: off {rate_off:,.0f}/s, CPU {cpu_off:.0f} µs each;"
        f" on {rate_on:,.0f}/s, CPU {cpu_on:.0f} µs each"
    )
    print(
        f"tracing on / off: rate {rate_on / rate_off:.2f}, CPU per delivery"
        f" {cpu_on / cpu_off:.2f} (+{cpu_on - cpu_off:.0f} µs)"
    )


def main() -> None:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--rounds", type=int, default=3, help="pairs of legs, alternating order")
    known, rest = own.parse_known_args(sys.argv[1:])
    args = parse(rest)
    args.rounds = known.rounds
    configure_logging("warning", stream=sys.stderr)
    against_receiver(args.loop, lambda url: run(url, args))


if __name__ == "__main__":
    main()
