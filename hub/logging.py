"""structlog, configured once per process: JSON for services, readable lines for a console."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

#: Fields whose values are never written, whatever logs them.
_SECRET = re.compile(r"pass(word)?|secret|token|credential|private|api_key", re.IGNORECASE)


def redact_secrets(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: a field named like a secret is logged as ``***``."""
    for key in event:
        if key != "event" and _SECRET.search(key):
            event[key] = "***"
    return event


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written: a test runner swaps it per command, and a
    logger bound to the stream of the first call would write to a closed one afterwards."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(fmt: str = "console", level: int = logging.INFO) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    # aiokafka logs through the standard library; on a console its retry warnings (a new topic's
    # leader not yet elected) are noise, in a service they are worth keeping.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR if fmt == "console" else logging.WARNING)
