"""Agent-report fixtures: realistic inputs, a scripted fake chat model, fake and real embedders."""

from __future__ import annotations

import json
import math
import random
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import NormalDist
from typing import Any

import polars as pl
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from stock_assets.agents.llm import ChatModelReportLLM
from stock_assets.agents.state import ReportInputs, build_report_inputs
from stock_assets.quantiles import P_UP, QUANTILE_COLUMNS, QUANTILES

AS_OF = date(2024, 6, 3)


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists():
            return parent
    return here.parents[2]


PRICES_DIR = _repo_root().parent / "shared" / "data" / "prices"


def trading_days(end: date, n: int) -> list[date]:
    """The last `n` weekdays up to and including `end`."""
    days: list[date] = []
    day = end
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def random_walk(
    days: list[date], start: float, vol: float, seed: int, drift: float = 0.0004
) -> list[float]:
    rng = random.Random(seed)
    closes = [start]
    for _ in days[1:]:
        closes.append(closes[-1] * math.exp(rng.gauss(drift, vol)))
    return closes


# The crafted forecasts' daily log-return volatility (1.5 %, a large cap's): the t+5 80 % range of
# a +2 % forecast is then about -2.3 % to +6.3 % with p_up 0.72, a call the band supports.
DAILY_VOL = 0.015


def gaussian_distribution(
    last_close: float, log_returns: list[float], daily_vol: float
) -> dict[str, list[float]]:
    """close_q05..close_q95 and p_up of each step: log-normal around its median log return, the
    spread growing with the square root of the horizon (steps are horizons 1, 2, ...)."""
    normal = NormalDist()
    columns: dict[str, list[float]] = {c: [] for c in (*QUANTILE_COLUMNS, P_UP)}
    for horizon, mu in enumerate(log_returns, start=1):
        sigma = daily_vol * math.sqrt(horizon)
        for q, column in zip(QUANTILES, QUANTILE_COLUMNS, strict=True):
            columns[column].append(last_close * math.exp(mu + sigma * normal.inv_cdf(q)))
        columns[P_UP].append(normal.cdf(mu / sigma))
    return columns


def forecast_frame(
    ticker: str,
    as_of: date,
    last_close: float,
    final_return_pct: float,
    model_version: str = "3",
    horizons: int = 5,
    daily_vol: float | None = DAILY_VOL,
) -> pl.DataFrame:
    """A daily_forecast partition moving linearly to `final_return_pct` at the last horizon, with
    each step's quantiles and p_up (`daily_vol` None: an older lake's frame, without them)."""
    targets = [d for d in (as_of + timedelta(days=i) for i in range(1, 15)) if d.weekday() < 5][
        :horizons
    ]
    steps = range(1, horizons + 1)
    closes = [last_close * (1 + final_return_pct / 100 * h / horizons) for h in steps]
    log_returns = [math.log(c / last_close) for c in closes]
    distribution = (
        {} if daily_vol is None else gaussian_distribution(last_close, log_returns, daily_vol)
    )
    return pl.DataFrame(
        {
            "ticker": [ticker] * horizons,
            "as_of_date": [as_of] * horizons,
            "target_date": targets,
            "horizon": list(range(1, horizons + 1)),
            "last_close": [last_close] * horizons,
            "predicted_return": [
                final_return_pct / 100 * h / horizons for h in range(1, horizons + 1)
            ],
            "predicted_close": closes,
            "model_name": [f"child_lstm_{ticker}"] * horizons,
            "model_version": [model_version] * horizons,
            **distribution,
        }
    )


GOOD_PERFORMANCE = {
    "rolling_mape_pct": 1.84,
    "naive_mape_pct": 2.10,
    "directional_accuracy": 0.58,
    "n_matured": 40,
}
QUIET_DRIFT = {"drift_share": 0.125, "drifted": False}


@pytest.fixture
def make_inputs() -> Callable[..., ReportInputs]:
    """Factory of synthetic-but-realistic inputs (70 trading days of a random walk and of ^GSPC)."""

    def factory(
        ticker: str = "AAPL",
        as_of: date = AS_OF,
        final_return_pct: float = 2.0,
        model_version: str = "3",
        performance: dict[str, Any] | None = GOOD_PERFORMANCE,
        drift: dict[str, Any] | None = QUIET_DRIFT,
        seed: int = 7,
        stock_drift: float = 0.0004,
        news: tuple[str, ...] = (),
        daily_vol: float | None = DAILY_VOL,
    ) -> ReportInputs:
        days = trading_days(as_of, 70)
        closes = random_walk(days, 180.0, 0.015, seed, stock_drift)
        index = random_walk(days, 5200.0, 0.008, seed + 1000)
        rng = random.Random(seed)
        prices = pl.DataFrame(
            {"date": days, "close": closes, "volume": [rng.uniform(4e7, 8e7) for _ in days]}
        )
        index_prices = pl.DataFrame({"date": days, "close": index, "volume": [3.5e9] * len(days)})
        forecast = forecast_frame(
            ticker, as_of, closes[-1], final_return_pct, model_version, daily_vol=daily_vol
        )
        return build_report_inputs(forecast, prices, index_prices, performance, drift, news=news)

    return factory


@pytest.fixture(scope="session")
def real_inputs() -> ReportInputs:
    """AAPL and ^GSPC from the shared CSVs (read in place), with a down forecast on 2023-06-30."""
    if not (PRICES_DIR / "AAPL.csv").exists() or not (PRICES_DIR / "GSPC.csv").exists():
        pytest.skip(f"shared price CSVs not found under {PRICES_DIR}")
    prices = pl.read_csv(PRICES_DIR / "AAPL.csv", try_parse_dates=True)
    index_prices = pl.read_csv(PRICES_DIR / "GSPC.csv", try_parse_dates=True)
    as_of = date(2023, 6, 30)
    last_close = prices.filter(pl.col("date") == as_of)["close"].item()
    return build_report_inputs(
        # AAPL's daily volatility in mid-2023 was about 1.2 %.
        forecast_frame("AAPL", as_of, last_close, -1.5, model_version="2", daily_vol=0.012),
        prices,
        index_prices,
        {
            "rolling_mape_pct": 1.62,
            "naive_mape_pct": 1.75,
            "directional_accuracy": 0.56,
            "n_matured": 60,
        },
        {"drift_share": 0.2, "drifted": False},
    )


class ScriptedFakeChatModel(BaseChatModel):
    """A fake chat model: replays scripted answers (or raises scripted errors), records prompts."""

    script: list[Any] = Field(default_factory=list)
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.calls.append(list(messages))
        if not self.script:
            raise AssertionError(
                "ScriptedFakeChatModel: script exhausted (more calls than expected)"
            )
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=item))])

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"


@pytest.fixture
def scripted_llm() -> Callable[..., tuple[ChatModelReportLLM, ScriptedFakeChatModel]]:
    """Factory: a ReportLLM over a ScriptedFakeChatModel answering `answers` in order."""

    def factory(*answers: Any) -> tuple[ChatModelReportLLM, ScriptedFakeChatModel]:
        fake = ScriptedFakeChatModel(script=list(answers))
        return ChatModelReportLLM(fake, name="fake:scripted"), fake

    return factory


def llm_answer(
    stance: str,
    confidence: str = "Medium",
    rationale: str = "The forecast and the market agree on this.",
    prose: str = "",
) -> str:
    """A well-formed LLM answer with the four sections and one JSON verdict."""
    verdict = json.dumps({"stance": stance, "confidence": confidence, "rationale": rationale})
    return (
        "## Forecast\nThe model expects a move over the next five sessions, inside a wide 80% "
        "range.\n\n"
        f"## Model reliability\nThe model has a usable track record. {prose}\n\n"
        "## Market context\nThe stock trades in line with the broad market.\n\n"
        f"## Verdict\n```json\n{verdict}\n```\n"
    )


class FakeEmbedder:
    """A fake embedder: bag of words hashed into 64 dimensions (similar texts, similar vectors)."""

    model_id = "fake-hash-64"

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += len(texts)
        vectors = []
        for text in texts:
            vector = [0.0] * 64
            for token in text.lower().split():
                vector[sum(map(ord, token)) * 2654435761 % 64] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            vectors.append([v / norm for v in vector])
        return vectors


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def minilm_embedder() -> Any:
    """The real offline MiniLM, loaded once for the whole session."""
    from stock_assets.agents.cache import MiniLMEmbedder, load_minilm

    load_minilm()
    return MiniLMEmbedder()


@pytest.fixture
def answer() -> Callable[..., str]:
    """The `llm_answer` builder, as a fixture (test modules do not import conftest)."""
    return llm_answer


class StubOllamaHandler(BaseHTTPRequestHandler):
    """A stub Ollama server (a fake, no model): /api/tags lists two models, /api/chat streams the
    scripted `answer`, /api/embed returns FakeEmbedder vectors."""

    answer = ""

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        models = [{"name": "stub-model:latest"}, {"name": "stub-embed:latest"}]
        self._send(json.dumps({"models": models}).encode(), "application/json")

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/api/embed":
            texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
            body = {"model": "stub-embed", "embeddings": FakeEmbedder().embed(texts)}
            self._send(json.dumps(body).encode(), "application/json")
            return
        stamp = {"model": "stub-model", "created_at": "2024-06-03T00:00:00Z"}
        chunks = [
            {**stamp, "message": {"role": "assistant", "content": self.answer}, "done": False},
            {
                **stamp,
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": "stop",
                "total_duration": 1,
                "load_duration": 1,
                "prompt_eval_count": 1,
                "prompt_eval_duration": 1,
                "eval_count": 1,
                "eval_duration": 1,
            },
        ]
        self._send("".join(json.dumps(c) + "\n" for c in chunks).encode(), "application/x-ndjson")


@pytest.fixture
def stub_ollama() -> Iterator[str]:
    """URL of a StubOllamaHandler server on a free local port, answering a BEARISH/Low report."""
    StubOllamaHandler.answer = llm_answer(
        "BEARISH", "Low", "The forecast points down but the model is unproven."
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubOllamaHandler)
    server.timeout = 0.05
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A local URL where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- crafted daily_forecast / forecast_performance partitions (exact contract schema) ----------
# docs/ARCHITECTURE.md's tables, written straight into a test lake, for the agent_report scenarios
# that need a chosen forecast (up, down, flat; an LLM contradicting it). The end-to-end test uses
# the real forecasting assets instead.

FORECAST_SCHEMA = {
    "ticker": pl.String, "as_of_date": pl.Date, "target_date": pl.Date, "horizon": pl.Int64,
    "last_close": pl.Float64, "predicted_return": pl.Float64, "predicted_close": pl.Float64,
    "model_name": pl.String, "model_version": pl.String, "created_at": pl.Datetime("us", "UTC"),
}  # fmt: skip
# The probabilistic forecast's columns (stock_assets/quantiles.py), where the lake has them.
DISTRIBUTION_SCHEMA = {column: pl.Float64 for column in (*QUANTILE_COLUMNS, P_UP)}
PERFORMANCE_SCHEMA = {
    "ticker": pl.String, "as_of_date": pl.Date, "target_date": pl.Date, "horizon": pl.Int64,
    "predicted_close": pl.Float64, "actual_close": pl.Float64, "naive_close": pl.Float64,
    "ape": pl.Float64, "naive_ape": pl.Float64, "error": pl.Float64,
    "direction_hit": pl.Boolean, "in_sample": pl.Boolean, "model_version": pl.String,
    "rolling_mape": pl.Float64, "rolling_naive_mape": pl.Float64,
    "rolling_directional_accuracy": pl.Float64, "rolling_n": pl.Int64,
}  # fmt: skip


def contract_forecast_frame(
    ticker: str,
    as_of: date,
    last_close: float,
    final_log_return: float,
    model_version: str = "1",
    horizon: int = 5,
    daily_vol: float | None = DAILY_VOL,
) -> pl.DataFrame:
    """daily_forecast[as_of|ticker]: a straight log-return path to `final_log_return` at t+H, with
    its quantiles and p_up (`daily_vol` None: an older lake's partition, without them)."""
    from datetime import UTC, datetime

    from stock_assets.market_calendar import next_sessions

    returns = [final_log_return * h / horizon for h in range(1, horizon + 1)]
    distribution = (
        {} if daily_vol is None else gaussian_distribution(last_close, returns, daily_vol)
    )
    return pl.DataFrame(
        {
            "ticker": [ticker] * horizon,
            "as_of_date": [as_of] * horizon,
            "target_date": next_sessions(as_of, horizon),
            "horizon": list(range(1, horizon + 1)),
            "last_close": [last_close] * horizon,
            "predicted_return": returns,
            "predicted_close": [last_close * math.exp(r) for r in returns],
            "model_name": [f"stock_assets_child_{ticker}"] * horizon,
            "model_version": [model_version] * horizon,
            "created_at": [datetime(as_of.year, as_of.month, as_of.day, 21, tzinfo=UTC)] * horizon,
            **distribution,
        },
        schema=FORECAST_SCHEMA if daily_vol is None else {**FORECAST_SCHEMA, **DISTRIBUTION_SCHEMA},
    )


def contract_performance_frame(
    ticker: str,
    day: date,
    rolling: dict[str, float] | None,
    closes: dict[date, float] | None = None,
    model_version: str = "1",
) -> pl.DataFrame:
    """forecast_performance[day|ticker]: the 5 forecasts maturing on `day` (made on the previous 5
    sessions, 1% high), the given rolling metrics on every row; no rows when `rolling` is None."""
    if rolling is None:
        return pl.DataFrame(schema=PERFORMANCE_SCHEMA)
    closes = closes or {}
    actual = closes.get(day, 100.0)
    earlier = sorted(d for d in closes if d < day)[-5:]
    earlier = earlier or [day - timedelta(days=h) for h in range(5, 0, -1)]
    rows = []
    for horizon, as_of in enumerate(reversed(earlier), start=1):
        naive = closes.get(as_of, actual)
        predicted = actual * 1.01
        rows.append(
            {
                "ticker": ticker, "as_of_date": as_of, "target_date": day, "horizon": horizon,
                "predicted_close": predicted, "actual_close": actual, "naive_close": naive,
                "ape": abs(predicted - actual) / actual, "naive_ape": abs(naive - actual) / actual,
                "error": predicted - actual,
                "direction_hit": (predicted >= naive) == (actual >= naive),
                "in_sample": False, "model_version": model_version, **rolling,
            }
        )  # fmt: skip
    return pl.DataFrame(rows, schema=PERFORMANCE_SCHEMA)


class ForecastContract:
    """Writes the stand-in tables into a lake (what the forecasting assets will write there)."""

    forecast_frame = staticmethod(contract_forecast_frame)
    performance_frame = staticmethod(contract_performance_frame)

    def __init__(self, lake_dir: Path) -> None:
        self.lake_dir = lake_dir

    def write_contract_forecast(
        self, ticker: str, as_of: date, last_close: float, final_log_return: float,
        model_version: str = "1", daily_vol: float | None = DAILY_VOL,
    ) -> pl.DataFrame:  # fmt: skip
        from stock_assets.lake import atomic_write_parquet, partition_path

        frame = contract_forecast_frame(
            ticker, as_of, last_close, final_log_return, model_version, daily_vol=daily_vol
        )
        atomic_write_parquet(
            frame, partition_path(self.lake_dir, "daily_forecast", ticker, as_of.isoformat())
        )
        return frame

    def write_contract_performance(
        self, ticker: str, day: date, rolling: dict[str, float] | None,
        closes: dict[date, float] | None = None,
    ) -> pl.DataFrame:  # fmt: skip
        from stock_assets.lake import atomic_write_parquet, partition_path

        frame = contract_performance_frame(ticker, day, rolling, closes)
        atomic_write_parquet(
            frame, partition_path(self.lake_dir, "forecast_performance", ticker, day.isoformat())
        )
        return frame


@pytest.fixture
def forecast_contract(project_home: Path) -> ForecastContract:
    """The stand-in writer for the test's project home lake."""
    return ForecastContract(project_home / "lake")
