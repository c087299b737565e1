"""When to retrain which model: one pure decision over check results, plus reading them.

`decide_retraining` is the whole policy, unit-tested on crafted inputs; the sensor only gathers its
inputs (new check evaluations from the instance, each ticker's last retrain run) and turns its
output into run requests. The policy:

1. Per (ticker, check) only the newest evaluation counts (latest partition date, then latest
   record): a failure already followed by a pass is not a reason to retrain.
2. A ticker whose newest forecast_mape or feature_drift failed is retrained, with every failing
   check named in the reason, unless it was retrained within the cooldown.
3. A failure of the index (ticker GSPC: market_index_indicators' feature_drift) retrains the
   parent; every child then follows the parent (another sensor), so a ticker's own request in the
   same tick is folded into that.
4. The run key names the ticker and the newest failing evaluation's record id, so a tick that sees
   the same evaluations again (a restarted daemon, a replayed cursor) requests nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from stock_assets.tickers import MARKET_INDEX_KEY

RETRAIN_REASON_TAG = "stock_assets/retrain_reason"
RETRAIN_TICKER_TAG = "stock_assets/retrain_ticker"


@dataclass(frozen=True)
class CheckEvaluation:
    """One completed evaluation of a watched check, reduced to what the decision needs."""

    record_id: int
    check_name: str
    ticker: str
    passed: bool
    partition_date: date | None = None
    description: str = ""


@dataclass(frozen=True)
class RetrainRequest:
    ticker: str
    reason: str
    run_key: str
    record_ids: tuple[int, ...]

    @property
    def is_parent(self) -> bool:
        return self.ticker == MARKET_INDEX_KEY


@dataclass(frozen=True)
class RetrainDecision:
    requests: tuple[RetrainRequest, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (ticker, why no request)

    def summary(self) -> str:
        parts = [f"retrain {r.ticker}: {r.reason}" for r in self.requests]
        parts += [f"skip {ticker}: {why}" for ticker, why in self.skipped]
        return "; ".join(parts) or "no failed forecast checks"


def newest_per_check(
    evaluations: Iterable[CheckEvaluation],
) -> dict[tuple[str, str], CheckEvaluation]:
    """(ticker, check) -> its newest evaluation: latest partition date, then latest record."""
    newest: dict[tuple[str, str], CheckEvaluation] = {}
    for evaluation in evaluations:
        key = (evaluation.ticker, evaluation.check_name)
        rank = (evaluation.partition_date or date.min, evaluation.record_id)
        current = newest.get(key)
        if current is None or rank > (current.partition_date or date.min, current.record_id):
            newest[key] = evaluation
    return newest


def _reason(failures: Sequence[CheckEvaluation]) -> str:
    parts = []
    for failure in sorted(failures, key=lambda f: f.check_name):
        when = f" on {failure.partition_date}" if failure.partition_date else ""
        detail = f": {failure.description}" if failure.description else ""
        parts.append(f"{failure.check_name} failed{when}{detail}")
    return "; ".join(parts)[:900]


def decide_retraining(
    evaluations: Iterable[CheckEvaluation],
    last_retrain: Mapping[str, datetime],
    now: datetime,
    cooldown: timedelta,
) -> RetrainDecision:
    """Which models to retrain, and why, from the check evaluations seen since the last tick."""
    failing: dict[str, list[CheckEvaluation]] = {}
    for (ticker, _), evaluation in sorted(newest_per_check(evaluations).items()):
        if not evaluation.passed:
            failing.setdefault(ticker, []).append(evaluation)
    requests: list[RetrainRequest] = []
    skipped: list[tuple[str, str]] = []
    eligible: dict[str, list[CheckEvaluation]] = {}
    for ticker, failures in sorted(failing.items()):
        last = last_retrain.get(ticker)
        if last is not None and now - last < cooldown:
            hours = (now - last).total_seconds() / 3600
            skipped.append(
                (
                    ticker,
                    f"retrained {hours:.1f} h ago, within the {cooldown.total_seconds() / 3600:g} h cooldown",
                )
            )
            continue
        eligible[ticker] = failures
    parent_retrains = MARKET_INDEX_KEY in eligible
    for ticker, failures in eligible.items():
        if parent_retrains and ticker != MARKET_INDEX_KEY:
            skipped.append((ticker, "its children retrain after the parent (index drift)"))
            continue
        newest_id = max(f.record_id for f in failures)
        requests.append(
            RetrainRequest(
                ticker=ticker,
                reason=_reason(failures),
                run_key=f"retrain-{ticker}-{newest_id}",
                record_ids=tuple(sorted(f.record_id for f in failures)),
            )
        )
    return RetrainDecision(tuple(requests), tuple(skipped))


# --- the sensor's cursor ------------------------------------------------------------------------


@dataclass
class EvaluationCursor:
    """Per check key: every record id <= `watermark` is handled; `seen` are handled ids above it.

    Dagster creates a check's execution record when a run is PLANNED and fills it in when the check
    is evaluated, so ids are not in evaluation order: a record still planned holds the watermark
    back, and later records that completed first are remembered in `seen`, never handled twice.
    """

    watermarks: dict[str, int] = field(default_factory=dict)
    seen: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> EvaluationCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(
            {k: int(v) for k, v in data.get("watermarks", {}).items()},
            {k: [int(i) for i in v] for k, v in data.get("seen", {}).items()},
        )

    def serialize(self) -> str:
        return json.dumps({"watermarks": self.watermarks, "seen": self.seen}, sort_keys=True)

    def is_new(self, key: str, record_id: int) -> bool:
        return record_id > self.watermarks.get(key, 0) and record_id not in self.seen.get(key, [])

    def advance(self, key: str, handled: Iterable[int], pending: Iterable[int]) -> None:
        """Mark `handled` ids done; the watermark stops just below the oldest `pending` one.

        New records always get larger ids than existing ones, so every record below the oldest
        pending one has been handled once this tick is done.
        """
        done = set(self.seen.get(key, [])) | set(handled)
        pending = list(pending)
        old = self.watermarks.get(key, 0)
        watermark = max(old, min(pending) - 1) if pending else max(done | {old})
        self.watermarks[key] = watermark
        self.seen[key] = sorted(i for i in done if i > watermark)
