"""The project's exceptions.

Every error names the field or resource at fault and the reason. ``retriable`` tells an adapter whether
trying again can help (a broker that is not up yet) or whether the input must go to the dead letters.
"""

from __future__ import annotations

from typing import ClassVar


class LintasError(Exception):
    """Root of every error Lintas raises on purpose."""

    retriable: ClassVar[bool] = False


class InvalidEvent(LintasError):
    """An event that breaks the contract. ``field`` is a dotted path (``envelope.case_id``)."""

    #: Stable machine-readable reason code, carried into receipts and dead letters.
    code: ClassVar[str] = "invalid_event"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class UndecodableEvent(InvalidEvent):
    """The bytes are not a Lintas event at all: empty, truncated, wrong marker, corrupt body."""

    code = "undecodable"


class UnknownSchema(InvalidEvent):
    """The bytes carry a schema fingerprint that no published contract version has."""

    code = "unknown_schema"


class SchemaError(LintasError):
    """The contract in ``schemas/avro`` itself is broken or incompatible between versions."""


class ConfigError(LintasError):
    """Configuration that cannot be used: names the file, the key and the reason."""


class BrokerError(LintasError):
    """The local Kafka broker could not be provisioned, started or reached."""

    retriable = True
