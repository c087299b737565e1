"""Fixtures every stage's tests share: a temporary project home, a real Dagster instance on it,
resources bound to it, small price folders, and a quiet in-process materialize.

Nothing here writes outside pytest's tmp_path, and no fixed port or path is shared, so the tests
run under pytest-xdist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from stock_assets.compat import innermost_error
from stock_assets.ingestion.sources import PriceSourceResource

REPO_ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
SHARED_PRICES_DIR = REPO_ROOT.parent / "shared" / "data" / "prices"

# A fixed last day for the synthetic market, so a test never depends on today's date.
SYNTHETIC_START = "2023-01-03"
SYNTHETIC_END = "2024-06-28"

# The slice of the real CSVs copied for tests (the files end on 2023-10-27).
CSV_SLICE = (date(2021, 1, 1), date(2023, 12, 31))
CSV_TICKERS = ("AAPL", "MSFT", "JNJ", "GSPC")

QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def data_layer_assets() -> list:
    """The ingestion and features assets (with their checks), without the later stages."""
    from stock_assets.features.definitions import defs as features_defs
    from stock_assets.ingestion.definitions import defs as ingestion_defs

    return [*ingestion_defs.assets, *features_defs.assets]


@dataclass
class Materializer:
    """`dg.materialize` on the test's instance with quiet logs; failures come back, not raise."""

    instance: dg.DagsterInstance
    default_assets: Callable[[], list] = data_layer_assets

    def __call__(
        self,
        selection: Sequence[str],
        resources: dict[str, Any],
        partition_key: str | None = None,
        assets: Sequence[Any] | None = None,
        raise_on_error: bool = False,
    ) -> dg.ExecuteInProcessResult:
        if partition_key is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", partition_key):
            self.register(partition_key)  # a ticker partition (a date is a panel partition)
        return dg.materialize(
            list(assets) if assets is not None else self.default_assets(),
            selection=dg.AssetSelection.assets(*selection),
            partition_key=partition_key,
            resources=resources,
            instance=self.instance,
            run_config=QUIET_RUN_CONFIG,
            raise_on_error=raise_on_error,
        )

    def register(self, *tickers: str) -> None:
        """Add ticker partitions the way the CLI, the sensor or the UI does (no validation)."""
        from stock_assets.partitions import ticker_partitions

        known = set(self.instance.get_dynamic_partitions(ticker_partitions.name))
        new = [t for t in tickers if t not in known]
        if new:
            self.instance.add_dynamic_partitions(ticker_partitions.name, new)

    @staticmethod
    def failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
        """Step key -> the innermost error message of each failed step."""
        return {
            event.step_key: innermost_error(event.step_failure_data.error)
            for event in result.all_events
            if event.is_step_failure and event.step_failure_data.error is not None
        }


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (the folder holding pyproject.toml)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_prices_dir() -> Path:
    """The real daily price CSVs (../shared/data/prices), read in place; skips when absent."""
    if not (SHARED_PRICES_DIR / "AAPL.csv").is_file():
        pytest.skip(f"shared price data not found at {SHARED_PRICES_DIR}")
    return SHARED_PRICES_DIR


@pytest.fixture
def project_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh STOCK_ASSETS_HOME (and DAGSTER_HOME inside it); env-built resources stay offline."""
    home = tmp_path / "home"
    (home / "dagster_home").mkdir(parents=True)
    monkeypatch.setenv("STOCK_ASSETS_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    monkeypatch.setenv("STOCK_ASSETS_PRICE_SOURCE", "synthetic")
    monkeypatch.setenv("STOCK_ASSETS_SYNTHETIC_END", SYNTHETIC_END)
    return home


@pytest.fixture
def instance(project_home: Path) -> Iterator[dg.DagsterInstance]:
    """A real Dagster instance (SQLite storage) in the project home's dagster_home."""
    with dg.instance_for_test(temp_dir=str(project_home / "dagster_home")) as test_instance:
        yield test_instance


@pytest.fixture
def synthetic_source() -> PriceSourceResource:
    """The seeded synthetic market, 2023-01-03..2024-06-28 (~375 sessions): fast and offline."""
    return PriceSourceResource(
        kind="synthetic", synthetic_start=SYNTHETIC_START, synthetic_end=SYNTHETIC_END
    )


@pytest.fixture
def resources(
    project_home: Path, synthetic_source: PriceSourceResource
) -> Callable[..., dict[str, Any]]:
    """Factory: build_resources(project_home, ...) with the synthetic source unless overridden."""
    from stock_assets.resources import build_resources

    def make(price_source: PriceSourceResource | None = None, **overrides: Any) -> dict[str, Any]:
        return build_resources(
            project_home, price_source=price_source or synthetic_source, **overrides
        )

    return make


@pytest.fixture
def csv_prices_dir(tmp_path: Path, shared_prices_dir: Path) -> Path:
    """A tmp folder with AAPL, MSFT, JNJ and GSPC CSVs cut to 2021-2023 (~700 rows each)."""
    folder = tmp_path / "prices"
    folder.mkdir()
    first, last = CSV_SLICE
    for ticker in CSV_TICKERS:
        (
            pl.read_csv(shared_prices_dir / f"{ticker}.csv", try_parse_dates=True)
            .filter(pl.col("date").is_between(first, last))
            .write_csv(folder / f"{ticker}.csv")
        )
    return folder


@pytest.fixture
def csv_source(csv_prices_dir: Path) -> PriceSourceResource:
    """The price_source resource reading the truncated CSV folder."""
    return PriceSourceResource(kind="csv", csv_dir=str(csv_prices_dir))


@pytest.fixture
def materialize(instance: dg.DagsterInstance) -> Materializer:
    """Call as materialize(["raw_prices", ...], resources, partition_key=...) on `instance`."""
    return Materializer(instance)


@pytest.fixture(autouse=True)
def _no_stale_defs_state_storage():
    """Dagster keeps the last instance's defs-state storage in a ContextVar; once that instance is
    gone, a later test in the same worker that loads definitions trips on its dead weakref."""
    from dagster._core.storage.defs_state import base

    base._current_storage.set(None)
    yield
