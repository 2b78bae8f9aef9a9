"""The audit log: who read which case's personal data or thread, written to ``lintas.audit`` before
the response is sent. A read whose record cannot be written is refused (503), never served unaudited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from connectors.api.credentials import Principal
from connectors.api.problems import Problem


@dataclass(frozen=True, slots=True)
class AuditRecord:
    request_id: str
    at: datetime
    principal: str
    country: str
    role: str
    agency: str | None
    action: str
    cases: tuple[str, ...]
    sections: tuple[str, ...]
    purpose: str | None

    def to_json(self) -> bytes:
        value = asdict(self)
        value["at"] = self.at.isoformat()
        return json.dumps(value, sort_keys=True).encode()


def audit_record(
    principal: Principal,
    *,
    request_id: str,
    at: datetime,
    action: str,
    cases: Sequence[str],
    sections: Sequence[str],
    purpose: str | None,
) -> AuditRecord:
    return AuditRecord(
        request_id=request_id,
        at=at,
        principal=principal.name,
        country=principal.country,
        role=principal.role.value,
        agency=principal.agency,
        action=action,
        cases=tuple(cases),
        sections=tuple(sorted(set(sections))),
        purpose=purpose,
    )


class AuditSink(Protocol):
    async def write(self, key: bytes, value: bytes) -> None: ...


class AuditLog:
    def __init__(self, sink: AuditSink, *, timeout: float) -> None:
        self.sink = sink
        self.timeout = timeout

    async def record(self, entry: AuditRecord) -> None:
        key = (entry.cases[0] if entry.cases else entry.principal).encode()
        try:
            await asyncio.wait_for(self.sink.write(key, entry.to_json()), self.timeout)
        except Exception as error:  # any failure to write means no answer
            raise Problem(
                503,
                "audit-unavailable",
                f"the audit log cannot record this read ({type(error).__name__}); try again later",
                headers={"Retry-After": "5"},
            ) from error
