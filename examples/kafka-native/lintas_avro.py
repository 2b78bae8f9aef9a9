"""The Lintas contract with the Apache Avro library alone: the schemas of a contract folder, each parsed
with the named types it uses, and Avro single-object encoding with the fingerprints the hub expects.

Shared by ``publish_v1.py`` and ``publish_v2.py``; copy it with them. It imports nothing of the hub.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import avro.io
import avro.name
import avro.schema

#: ``schemas/avro`` of this repository (a national system keeps its own copy of the folder).
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"
#: Avro single-object encoding: these two bytes, the writer schema's fingerprint, the body.
MARKER = b"\xc3\x01"
#: The Avro specification's CRC-64-AVRO polynomial (also the fingerprint of empty input).
_CRC64_EMPTY = 0xC15D213AA4D7A795
_PRIMITIVE = re.compile(r'\{"type":("(?:null|boolean|int|long|float|double|bytes|string)")\}')
_REFERENCE = re.compile(r'"(lintas\.[\w.]+)"')


def load(*folders: Path) -> dict[str, avro.schema.Schema]:
    """Every named type in ``folders`` by its full name (the file name), each parsed after the types
    it refers to, since a file names the others (``"lintas.Envelope"``) rather than repeating them."""
    raw = {
        path.name.removesuffix(".avsc"): json.loads(path.read_text(encoding="utf-8"))
        for folder in folders
        for path in sorted(folder.glob("*.avsc"))
    }
    names = avro.name.Names()
    parsed: dict[str, avro.schema.Schema] = {}

    def parse(name: str) -> None:
        if name in parsed:
            return
        for used in sorted(set(_REFERENCE.findall(json.dumps(raw[name]))) & (raw.keys() - {name})):
            parse(used)
        parsed[name] = avro.schema.make_avsc_object(raw[name], names)

    for name in raw:
        parse(name)
    return parsed


def fingerprint(schema: avro.schema.Schema) -> bytes:
    """CRC-64-AVRO, little-endian, of the schema's Parsing Canonical Form, as the specification, Java
    and fastavro compute it.

    avro 1.12's ``canonical_form`` writes a primitive that carries a logical type (uuid, date,
    timestamp-millis) as ``{"type":"string"}`` where the canonical form is the bare ``"string"``, so
    its own ``fingerprint()`` differs from every other implementation's and the hub would answer
    ``unknown_schema``: the form is repaired before it is hashed."""
    form = _PRIMITIVE.sub(r"\1", schema.canonical_form).encode()
    value = _CRC64_EMPTY
    for byte in form:
        value ^= byte
        for _ in range(8):
            value = (value >> 1) ^ (_CRC64_EMPTY & -(value & 1))
    return value.to_bytes(8, "little")


def binary(schema: avro.schema.Schema, datum: Any) -> bytes:
    """The Avro binary encoding of ``datum`` (checked against ``schema`` as it is written)."""
    buffer = io.BytesIO()
    avro.io.DatumWriter(schema).write(datum, avro.io.BinaryEncoder(buffer))
    return buffer.getvalue()


def single_object(schema: avro.schema.Schema, datum: Any) -> bytes:
    """Avro single-object encoding: what every Lintas message is on Kafka."""
    return MARKER + fingerprint(schema) + binary(schema, datum)
