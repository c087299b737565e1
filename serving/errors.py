"""Every failure becomes a JSON body a person can act on; none shows a stack trace.

User input is checked before it reaches the lake, so user mistakes are 4xx: an unknown ticker is a
404 naming it, a malformed ticker or parameter a 422 stating the rule, missing data a 404 naming
the asset to materialize. A broken file in the lake is a 503 (the pipeline must fix it); anything
else is logged and answered with a bare 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.lake_reader import LakeDataError, LakeLookupError, UnknownTickerError
from serving.schemas import ErrorBody, json_response
from stock_assets.contract import InvalidTickerError

logger = logging.getLogger("serving")


def error_response(status_code: int, **fields: object) -> Response:
    """An ErrorBody response, for middleware that answers before any route (401, 429)."""
    body = ErrorBody(**fields)  # type: ignore[arg-type]
    return json_response(body.model_dump_json(exclude_none=True).encode(), status_code=status_code)


async def _lookup_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LakeLookupError)
    kind = "unknown_ticker" if isinstance(exc, UnknownTickerError) else "not_materialized"
    return error_response(404, detail=exc.detail, error=kind, ticker=exc.ticker, asset=exc.asset)


async def _invalid_ticker(_: Request, exc: Exception) -> Response:
    return error_response(422, detail=str(exc), error="invalid_parameter")


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "")).removeprefix("Value error, "),
        }
        for error in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
    return error_response(422, detail=detail or "Invalid request.", error="invalid_parameter", errors=errors)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed"}
    response = error_response(
        exc.status_code,
        detail=str(exc.detail),
        error=kinds.get(exc.status_code, "invalid_parameter"),
    )
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _lake_data_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LakeDataError)
    logger.error("lake data error: %s", exc.detail, exc_info=exc)
    return error_response(503, detail=exc.detail, error="data_unavailable", asset=exc.asset)


async def _contract_violation(_: Request, exc: Exception) -> Response:
    # Request parameters fail as RequestValidationError; a plain ValidationError can only come
    # from building a response out of lake rows that break the contract (a null, a bad enum).
    logger.error("lake rows break the response contract", exc_info=exc)
    return error_response(
        503,
        detail="Lake data does not match the API contract (see the server log); re-materialize it.",
        error="data_unavailable",
    )


async def _unexpected(_: Request, exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc)
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        detail="Internal error; the server log has the details.",
        error="internal_error",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LakeLookupError, _lookup_error)
    app.add_exception_handler(InvalidTickerError, _invalid_ticker)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(LakeDataError, _lake_data_error)
    app.add_exception_handler(ValidationError, _contract_violation)
    app.add_exception_handler(Exception, _unexpected)


# Documented on every data route (the OpenAPI schema must say what the API really answers).
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "Unknown ticker, or the asset is not materialized."},
    422: {"model": ErrorBody, "description": "A malformed ticker or parameter; the rule is given."},
    503: {"model": ErrorBody, "description": "A lake file is unreadable or breaks the contract."},
    401: {"model": ErrorBody, "description": "STOCK_ASSETS_API_KEY is set and the key is missing "
          "or wrong."},
    429: {"model": ErrorBody, "description": "Over this client's limit on the route; see "
          "Retry-After."},
}
