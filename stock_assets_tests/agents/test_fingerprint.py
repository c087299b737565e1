"""The facts fingerprint: equal exactly when every fact a report states is equal as printed."""

from __future__ import annotations

from datetime import date

from stock_assets.agents.fingerprint import report_facts, report_fingerprint

GOOD = {"rolling_mape_pct": 1.84, "naive_mape_pct": 2.10, "directional_accuracy": 0.58,
        "n_matured": 40}  # fmt: skip


def test_fingerprint_is_stable_and_tracks_identity_and_forecast(make_inputs) -> None:
    base = report_fingerprint(make_inputs())
    assert base == report_fingerprint(make_inputs())
    assert base != report_fingerprint(make_inputs(model_version="4"))
    assert base != report_fingerprint(make_inputs(final_return_pct=2.01))
    assert base != report_fingerprint(make_inputs(as_of=date(2024, 6, 4)))
    assert base != report_fingerprint(make_inputs(ticker="MSFT"))


def test_fingerprint_tracks_the_quantiles_and_p_up(make_inputs) -> None:
    inputs = make_inputs()
    base = report_fingerprint(inputs)
    # The same point forecast with a wider range, or without one (an older lake): another report.
    assert base != report_fingerprint(make_inputs(daily_vol=0.02))
    assert base != report_fingerprint(make_inputs(daily_vol=None))
    final = inputs.forecast[-1]
    other_p_up = inputs.model_copy(
        update={"forecast": (*inputs.forecast[:-1], final.model_copy(update={"p_up": 0.5}))}
    )
    assert report_fingerprint(other_p_up) != base
    # A quantile the report never prints (q05 of step 1) still counts, at 2 decimals.
    first = inputs.forecast[0]
    low = (round(first.quantiles[0] - 0.05, 2), *first.quantiles[1:])
    lower_q05 = inputs.model_copy(
        update={"forecast": (first.model_copy(update={"quantiles": low}), *inputs.forecast[1:])}
    )
    assert report_fingerprint(lower_q05) != base


def test_every_stated_metric_and_the_drift_alarm_are_facts(make_inputs) -> None:
    base = report_fingerprint(make_inputs())
    for performance, drift in (
        ({**GOOD, "rolling_mape_pct": 3.5}, None),
        ({**GOOD, "naive_mape_pct": 2.2}, None),
        ({**GOOD, "directional_accuracy": 0.61}, None),
        ({**GOOD, "n_matured": 41}, None),
        (None, None),
        (GOOD, {"drift_share": 0.6, "drifted": True}),
        (GOOD, {"drift_share": 0.125, "drifted": True}),  # same share, the check now alarms
        (GOOD, {}),
    ):
        kwargs = {"performance": performance}
        if drift is not None:
            kwargs["drift"] = drift
        assert report_fingerprint(make_inputs(**kwargs)) != base, (performance, drift)


def test_values_equal_at_the_printed_precision_are_the_same_facts(make_inputs) -> None:
    base = make_inputs()
    same = make_inputs(
        performance={**GOOD, "directional_accuracy": 0.5801},  # printed 58.0%
        drift={"drift_share": 0.1251, "drifted": False},  # printed 12.5%
    )
    assert same.cache_query_text() != base.cache_query_text()
    assert report_fingerprint(same) == report_fingerprint(base)
    facts = report_facts(base)
    reliability = dict(facts["figures"]["Model reliability"])
    assert reliability["Rolling MAPE"] == "1.84%"
    assert reliability["Directional accuracy"] == "58.0% over 40 matured forecasts"
    assert reliability["Feature drift"] == "12.5% of features drifted (no drift alarm)"
    assert facts["rules"]["deterministic_verdict"] == ["BULLISH", "Medium"]
    assert len(facts["forecast"]) == 5 and len(facts["forecast"][-1][3]) == 7
