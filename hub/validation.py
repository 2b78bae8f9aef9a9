"""Turning pydantic's validation errors into the project's "field path: reason" messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError


def error_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "<top>"


def error_reason(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "field is not part of the contract"
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        return f"unknown code {error['input']!r}; expected one of {expected}"
    message: str = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{message} (got {type(error['input']).__name__} {error['input']!r})"
    return message


def first_error(exc: ValidationError) -> tuple[str, str]:
    """Path and reason of the first error (pydantic orders them as the fields are declared)."""
    error = exc.errors()[0]
    return error_path(error["loc"]), error_reason(error)


def all_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """Path and reason of every error, in pydantic's order."""
    return [(error_path(error["loc"]), error_reason(error)) for error in exc.errors()]
