"""Codec throughput: Avro single-object encoding against orjson JSON, on the same generated events, and
contract v2 beside them: the whole national-system write (sections, sealing, signature) and the
partner's read (verify, unseal, decode), with the cryptography alone (seal/open a section, Ed25519
sign/verify) measured on the same events in the same run.

Prints events/s for each, their ratios, then one JSON line of the figures.
Usage: python benchmarks/codec.py [--events N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.codec import Codec
from hub.crypto.keystore import EmbeddedKeyStore
from hub.crypto.sealing import open_sealed, seal, section_aad
from hub.crypto.signing import load_key_directory
from hub.events import event_to_record, parse_event
from hub.synthetic import synthetic_stream
from hub.wire.codec import Wire
from hub.wire.national import NationalSystems


def best_rate(action: Callable[[], object], count: int, repeat: int) -> float:
    """Events/s of the fastest of ``repeat`` runs (the least disturbed by the machine)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return count / best


def _v2_figures(codec: Codec, events: list[Any], avro_bytes: list[bytes], repeat: int) -> dict[str, Any]:
    """Contract v2 on the same events, with a key store of its own in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="lintas-bench-keys-") as folder:
        keys = EmbeddedKeyStore(Path(folder) / "keys.sqlite")
        wire = Wire(codec, directory=load_key_directory(), keys=keys)
        systems = NationalSystems(wire, keys)
        v2_bytes = [systems.encode(event) for event in events]  # creates every case's key once
        count = len(events)
        readers = [event.envelope.source_country.value for event in events]
        key = os.urandom(32)
        sections = [data[:300] for data in avro_bytes]
        aad = section_aad("00000000-0000-0000-0000-000000000000", "TH-1", "PersonalIdentity", b"\0" * 8)
        sealed = [seal(key, section, aad) for section in sections]
        signer = systems.signer("TH")
        public = Ed25519PublicKey.from_public_bytes(signer.public_bytes())
        signatures = [signer.sign(data) for data in avro_bytes]
        return {
            "v2_mean_bytes": round(sum(map(len, v2_bytes)) / count, 1),
            "v2_write_per_s": best_rate(lambda: [systems.encode(e) for e in events], count, repeat),
            "v2_read_per_s": best_rate(
                lambda: [wire.open(b, reader=r) for b, r in zip(v2_bytes, readers, strict=True)],
                count,
                repeat,
            ),
            "seal_per_s": best_rate(lambda: [seal(key, s, aad) for s in sections], count, repeat),
            "unseal_per_s": best_rate(lambda: [open_sealed(key, s, aad) for s in sealed], count, repeat),
            "sign_per_s": best_rate(lambda: [signer.sign(b) for b in avro_bytes], count, repeat),
            "verify_per_s": best_rate(
                lambda: [public.verify(s, b) for s, b in zip(signatures, avro_bytes, strict=True)],
                count,
                repeat,
            ),
        }


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
    figures.update(_v2_figures(codec, events, avro_bytes, args.repeat))
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
    print(f"\ncontract v2 (mean {figures['v2_mean_bytes']} B){'per s':>16}{'vs v1 avro':>12}")
    for label, key, base in (
        ("write (seal + sign)", "v2_write_per_s", "avro_encode_per_s"),
        ("read (verify + open)", "v2_read_per_s", "avro_decode_per_s"),
        ("seal one section", "seal_per_s", None),
        ("open one section", "unseal_per_s", None),
        ("Ed25519 sign", "sign_per_s", None),
        ("Ed25519 verify", "verify_per_s", None),
    ):
        rate = figures[key]
        ratio = f"{rate / figures[base]:>12.2f}" if base else ""
        print(f"{label:36}{rate:>10,.0f}{ratio}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
