"""Problem details (RFC 9457): every error the API answers is ``application/problem+json`` with a
stable ``type``, the status, a ``detail`` naming the field or resource and the reason, and for
invalid events every field at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.validation import error_path, error_reason

PROBLEM_TYPE = "https://lintas.example/problems/"
MEDIA_TYPE = "application/problem+json"


class FieldProblem(BaseModel):
    path: str = Field(description="The field at fault, dotted (envelope.case_id, personal.documents.0).")
    reason: str
    index: int | None = Field(default=None, description="The event's position in a batch.")


class ProblemBody(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


class Problem(Exception):
    """An answer other than success; raised anywhere in a handler."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        *,
        title: str | None = None,
        errors: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.title = title or kind.replace("-", " ").capitalize()
        self.errors = errors or []
        self.headers = headers or {}

    def body(self, instance: str | None) -> dict[str, Any]:
        return ProblemBody(
            type=PROBLEM_TYPE + self.kind,
            title=self.title,
            status=self.status,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
        ).model_dump(exclude_none=True)


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    return JSONResponse(
        problem.body(request.url.path),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=problem.headers,
    )


_KINDS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "too-large",
    415: "unsupported-media-type",
}


def install(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            FieldProblem(path=error_path(tuple(error["loc"])), reason=error_reason(error))
            for error in exc.errors()
        ]
        detail = "; ".join(f"{e.path}: {e.reason}" for e in errors) or "the request is not valid"
        return problem_response(Problem(422, "invalid-request", detail, errors=errors), request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = _KINDS.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        return problem_response(Problem(exc.status_code, kind, str(exc.detail), headers=headers), request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(StarletteHTTPException, on_http)


_KINDS_DOCUMENTED = {**_KINDS, 409: "conflict", 422: "invalid", 503: "unavailable"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems an operation may answer."""
    content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}
    return {
        status: {
            "description": _KINDS_DOCUMENTED.get(status, "problem").replace("-", " "),
            "content": content,
        }
        for status in statuses
    }


def problem_schemas() -> dict[str, Any]:
    """The components the problem responses refer to."""
    schema = ProblemBody.model_json_schema(ref_template="#/components/schemas/{model}")
    found: dict[str, Any] = schema.pop("$defs", {})
    return {**found, "ProblemBody": schema}
