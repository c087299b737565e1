"""Property-based requests generated from the OpenAPI schema (schemathesis): valid and invalid
tickers, dates and numbers against every operation. No answer may be a 5xx, and every answer must
match what the schema documents (status codes, content types, bodies).

Cases come from `APIOperation.as_strategy` under plain hypothesis: schemathesis's own pytest
plugin (`from_fixture`) breaks on pytest 9 (it reads the private `Function._nodeid`).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

OPERATIONS = [
    ("GET", "/tickers"),
    ("GET", "/forecasts/latest"),
    ("GET", "/forecasts/{ticker}"),
    ("GET", "/history/{ticker}"),
    ("GET", "/performance/{ticker}"),
    ("GET", "/models/{ticker}"),
    ("GET", "/reports/{ticker}"),
    ("GET", "/drift/{ticker}"),
    ("GET", "/health"),
    ("GET", "/metrics"),
]


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed(api_schema):
    documented = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert documented == set(OPERATIONS)


# Negative cases need a constraint to break: a `days` range or the `as_of` date format (a
# ticker is any string in the schema; its rule is enforced, and tested, as a 422).
CONSTRAINED = {
    "/forecasts/{ticker}",
    "/history/{ticker}",
    "/performance/{ticker}",
    "/reports/{ticker}",
    "/drift/{ticker}",
}
CASES = (
    [(m, p, GenerationMode.POSITIVE, None) for m, p in OPERATIONS]
    # Random tickers are mostly 404/422: also fuzz the other parameters on a ticker with data.
    # (Not /drift: the pipeline lake's feature_drift check does not write its reports into the
    # lake yet; test_drift_reports.py serves real ones. Drop the exclusion once it does.)
    + [(m, p, GenerationMode.POSITIVE, "AAPL") for m, p in OPERATIONS
       if "{ticker}" in p and p != "/drift/{ticker}"]
    + [(m, p, GenerationMode.NEGATIVE, None) for m, p in OPERATIONS if p in CONSTRAINED]
    + [(m, p, GenerationMode.NEGATIVE, "AAPL") for m, p in OPERATIONS if p in CONSTRAINED]
)


@pytest.mark.parametrize(("method", "path", "mode", "ticker"), CASES)
def test_no_server_errors_and_responses_match_the_schema(api_schema, method, path, mode, ticker):
    operation = api_schema[path][method]
    statuses: list[int] = []
    fixed = {"ticker": ticker} if ticker else None

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same cases on every run: a failure here is reproducible
        database=None,
    )
    def check(case) -> None:
        # positive_data_acceptance expects 2xx for any schema-valid input; a well-formed ticker
        # with no data is rightly a 404 here, so that one check does not apply.
        response = case.call_and_validate(
            additional_checks=[not_a_server_error], excluded_checks=[positive_data_acceptance]
        )
        statuses.append(response.status_code)

    check()
    assert statuses and max(statuses) < 500
    if ticker and mode is GenerationMode.POSITIVE:
        assert 200 in statuses, statuses  # the data paths themselves were exercised
