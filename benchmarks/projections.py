"""Rebuilding every projection from the hub's log, against raw consume-and-decode of the same log.

One broker, one log, one run. The log (``--events``, default 1,000,000 accepted events of synthetic
cases) is published to ``lintas.hub.accepted`` once; then two child processes read it from offset 0:
the baseline only consumes and decodes each event; the rebuild also folds every case, derives every
obligation and alert, and computes the regional statistics. Each child reports its events/s and its
peak RSS. Ends with one JSON line of the figures.

Usage: python benchmarks/projections.py [--events N] [--bootstrap-servers HOST:PORT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# This file shares its name with the package it measures: import the package, not this file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from hub.agreements import load_agreements
from hub.broker.local import LocalBroker, provision
from hub.codec import Codec
from hub.kafka import ensure_topics, producer
from hub.synthetic import synthetic_stream
from hub.topics import ACCEPTED_EVENTS
from projections.cases.fold import CaseState, evolve
from projections.obligations.rules import alerts_for, deadlines_for
from projections.replay import each_accepted_event
from projections.stats.aggregate import regional_statistics

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CHUNK_CASES = 5_000


async def publish_log(bootstrap: str, events: int, partitions: int) -> int:
    """Publish about ``events`` encoded events of synthetic cases, chunk by chunk (bounded memory)."""
    await ensure_topics(bootstrap, [ACCEPTED_EVENTS], partitions=partitions)
    codec = Codec(clock=lambda: NOW)
    kafka_producer = producer(bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await kafka_producer.start()
    published, chunk = 0, 0
    try:
        while published < events:
            stream = synthetic_stream(
                seed=chunk,
                cases=CHUNK_CASES,
                start=NOW - timedelta(days=900),
                until=NOW,
                opening_days=500,
                run_tag=f"B{chunk:04d}-",
            )
            batch = []
            for event in stream:
                if published >= events:
                    break
                batch.append(
                    await kafka_producer.send(
                        ACCEPTED_EVENTS, codec.encode(event), key=event.envelope.case_id.encode()
                    )
                )
                published += 1
            await asyncio.gather(*batch)
            chunk += 1
    finally:
        await kafka_producer.stop()
    return published


def child(phase: str, bootstrap: str) -> None:
    """Run one phase and print its figures as JSON (peak RSS is this process's own)."""
    codec = Codec(clock=lambda: NOW)
    states: dict[str, CaseState] = {}

    def decode_only(_event: object) -> None:
        pass

    def fold_one(event: object) -> None:
        assert hasattr(event, "envelope")
        case_id = event.envelope.case_id
        state = evolve(states.get(case_id), event)  # type: ignore[arg-type]
        if state is not None:
            states[case_id] = state

    started = time.perf_counter()
    count = asyncio.run(
        each_accepted_event(bootstrap, codec, decode_only if phase == "baseline" else fold_one, within=3600)
    )
    extra: dict[str, object] = {}
    if phase == "rebuild":
        agreements = load_agreements()
        alerts = sum(len(alerts_for(s, deadlines_for(s, agreements), NOW)) for s in states.values())
        stats = regional_statistics(states.values(), agreements)
        extra = {"cases": len(states), "alerts": alerts, "stats_type": type(stats).__name__}
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"events": count, "seconds": seconds, "peak_rss_mb": peak_kib / 1024, **extra}))


def run_child(phase: str, bootstrap: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--bootstrap-servers", bootstrap],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--phase", choices=["baseline", "rebuild"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args.phase, args.bootstrap_servers)
        return

    broker = None
    bootstrap = args.bootstrap_servers
    if bootstrap is None:
        broker = LocalBroker(
            Path(tempfile.mkdtemp(prefix="lintas-bench-")) / "kafka", provision(), security="plaintext"
        )
        bootstrap = broker.start()
    try:
        started = time.perf_counter()
        published = asyncio.run(publish_log(bootstrap, args.events, args.partitions))
        print(f"published {published} events in {time.perf_counter() - started:.0f} s")
        baseline = run_child("baseline", bootstrap)
        rebuild = run_child("rebuild", bootstrap)
    finally:
        if broker is not None:
            broker.stop()

    base_rate = baseline["events"] / baseline["seconds"]
    rebuild_rate = rebuild["events"] / rebuild["seconds"]
    print(f"{'':32}{'events/s':>12}{'seconds':>10}{'peak RSS MB':>14}")
    print(
        f"{'consume + decode (baseline)':32}{base_rate:>12,.0f}{baseline['seconds']:>10.1f}"
        f"{baseline['peak_rss_mb']:>14.0f}"
    )
    print(
        f"{'rebuild all projections':32}{rebuild_rate:>12,.0f}{rebuild['seconds']:>10.1f}"
        f"{rebuild['peak_rss_mb']:>14.0f}"
    )
    print(
        f"ratio {rebuild_rate / base_rate:.2f}; {rebuild['cases']:.0f} cases, "
        f"{rebuild['alerts']:.0f} open alerts"
    )
    print(
        json.dumps(
            {
                "benchmark": "projections",
                "events": published,
                "baseline_per_s": round(base_rate, 1),
                "rebuild_per_s": round(rebuild_rate, 1),
                "ratio": round(rebuild_rate / base_rate, 3),
                "rebuild_seconds": round(rebuild["seconds"], 1),
                "baseline_peak_rss_mb": round(baseline["peak_rss_mb"], 1),
                "rebuild_peak_rss_mb": round(rebuild["peak_rss_mb"], 1),
                "cases": rebuild["cases"],
            }
        )
    )


if __name__ == "__main__":
    main()
