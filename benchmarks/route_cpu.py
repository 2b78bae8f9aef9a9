"""The router's CPU cost per event, without Kafka: ``Router.route`` over synthetic cases, with the case
states in a plain dict as the worker keeps them, against fastavro decoding the same bytes.

Prints microseconds per event for the baseline (fastavro's schemaless read of the body alone), the
codec's full decode (bytes -> checked model) and the router's decision, the outcomes, then one JSON
line of the figures.
Usage: python benchmarks/route_cpu.py [--events N] [--repeat R] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import BytesIO

import fastavro

from hub.agreements import load_agreements
from hub.codec import HEADER_SIZE, Codec
from hub.routing import CaseRoute, Incoming, Router
from hub.synthetic import synthetic_stream
from hub.topics import nrm_events

#: One submission in this many is sent twice (a national system retrying), as duplicates are routed too.
RESUBMIT_EVERY = 50


def best_seconds(action: Callable[[], object], repeat: int) -> float:
    """CPU seconds of the fastest of ``repeat`` runs (the least disturbed by the machine; CPU time, so
    that other processes on a busy machine count as little as they can)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print the router's top functions")
    args = parser.parse_args()

    now = datetime.now(UTC)
    codec = Codec(clock=lambda: now)
    router = Router(codec=codec, agreements=load_agreements())
    messages: list[Incoming] = []
    stream = synthetic_stream(11, cases=max(1, args.events // 4), start=now - timedelta(days=700), until=now)
    for number, event in enumerate(stream):
        country = event.envelope.source_country.value
        value = codec.encode(event)
        key = event.envelope.case_id.encode()
        for _ in range(2 if number % RESUBMIT_EVERY == RESUBMIT_EVERY - 1 else 1):
            messages.append(Incoming(country, nrm_events(country), 0, len(messages), key, value))
        if len(messages) >= args.events:
            break
    count = len(messages)
    parsed = {m.value[2:HEADER_SIZE]: codec.schema_of(m.value).parsed for m in messages}

    def fastavro_decode() -> None:
        for m in messages:
            body = BytesIO(m.value)
            body.seek(HEADER_SIZE)
            fastavro.schemaless_reader(body, parsed[m.value[2:HEADER_SIZE]], None)

    def codec_decode() -> None:
        for m in messages:
            codec.decode(m.value)

    outcomes: Counter[str] = Counter()

    def route() -> None:
        states: dict[str, CaseRoute] = {}
        outcomes.clear()
        for m in messages:
            decision = router.route(m, states)
            outcomes[decision.status.value] += 1
            if decision.state is not None and decision.case_id is not None:
                states[decision.case_id] = decision.state

    seconds = {
        "fastavro_decode": best_seconds(fastavro_decode, args.repeat),
        "codec_decode": best_seconds(codec_decode, args.repeat),
        "route": best_seconds(route, args.repeat),
    }
    per_event = {name: s / count * 1e6 for name, s in seconds.items()}
    baseline = per_event["fastavro_decode"]

    print(f"{count} messages ({', '.join(f'{n} {k.lower()}' for k, n in sorted(outcomes.items()))})")
    print(f"{'':36}{'µs/event':>10}{'× baseline':>12}")
    for label, name in (
        ("fastavro schemaless read (baseline)", "fastavro_decode"),
        ("codec.decode (bytes -> model)", "codec_decode"),
        ("Router.route (decision)", "route"),
    ):
        print(f"{label:36}{per_event[name]:>10.1f}{per_event[name] / baseline:>12.2f}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(route)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    figures = {
        "benchmark": "route_cpu",
        "messages": count,
        **{f"{name}_us": round(value, 2) for name, value in per_event.items()},
        "route_over_baseline": round(per_event["route"] / baseline, 2),
        "outcomes": dict(sorted(outcomes.items())),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
