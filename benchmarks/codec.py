"""Codec throughput: Avro single-object encoding against orjson JSON, on the same generated events.

Prints events/s for encode and decode of each, their ratio, then one JSON line of the figures.
Usage: python benchmarks/codec.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hub.codec import Codec
from hub.events import event_to_record, parse_event
from hub.synthetic import synthetic_stream


def best_rate(action: Callable[[], object], count: int, repeat: int) -> float:
    """Events/s of the fastest of ``repeat`` runs (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    now = datetime.now(UTC)
    codec = Codec(clock=lambda: now)
    events = []
    for event in synthetic_stream(7, cases=args.events, start=now - timedelta(days=700), until=now):
        events.append(event)
        if len(events) == args.events:
            break
    count = len(events)

    avro_bytes = [codec.encode(event) for event in events]
    json_bytes = [orjson.dumps(event_to_record(event)) for event in events]

    def json_decode() -> list[Any]:
        return [parse_event(orjson.loads(data), now=now) for data in json_bytes]

    figures = {
        "benchmark": "codec",
        "events": count,
        "avro_mean_bytes": round(sum(map(len, avro_bytes)) / count, 1),
        "json_mean_bytes": round(sum(map(len, json_bytes)) / count, 1),
        "avro_encode_per_s": best_rate(lambda: [codec.encode(e) for e in events], count, args.repeat),
        "json_encode_per_s": best_rate(
            lambda: [orjson.dumps(event_to_record(e)) for e in events], count, args.repeat
        ),
        "avro_decode_per_s": best_rate(lambda: [codec.decode(b) for b in avro_bytes], count, args.repeat),
        "json_decode_per_s": best_rate(json_decode, count, args.repeat),
        # the body alone, without building and checking the pydantic model
        "avro_decode_record_per_s": best_rate(
            lambda: [codec.decode_record(b) for b in avro_bytes], count, args.repeat
        ),
        "json_loads_per_s": best_rate(lambda: [orjson.loads(b) for b in json_bytes], count, args.repeat),
    }
    figures["encode_ratio_avro_over_json"] = figures["avro_encode_per_s"] / figures["json_encode_per_s"]
    figures["decode_ratio_avro_over_json"] = figures["avro_decode_per_s"] / figures["json_decode_per_s"]

    print(
        f"{count} events; mean size avro {figures['avro_mean_bytes']} B, json {figures['json_mean_bytes']} B"
    )
    print(f"{'':28}{'avro':>12}{'orjson':>12}{'ratio':>8}")
    for label, avro_key, json_key in (
        ("encode (model -> bytes)", "avro_encode_per_s", "json_encode_per_s"),
        ("decode (bytes -> model)", "avro_decode_per_s", "json_decode_per_s"),
        ("decode (bytes -> dict)", "avro_decode_record_per_s", "json_loads_per_s"),
    ):
        a, j = figures[avro_key], figures[json_key]
        print(f"{label:28}{a:>12,.0f}{j:>12,.0f}{a / j:>8.2f}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
