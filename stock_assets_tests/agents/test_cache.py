"""The Qdrant report cache: same facts hit, any changed fact or model version misses, failures
degrade."""

from __future__ import annotations

from datetime import date

from stock_assets.agents.cache import (
    MiniLMEmbedder,
    OllamaEmbedder,
    ReportCache,
    load_minilm,
    make_report_cache,
    minilm_loaded,
)
from stock_assets.agents.fingerprint import report_fingerprint
from stock_assets.agents.graph import write_report
from stock_assets.agents.llm import DeterministicAnalystLLM

GOOD_METRICS = {
    "rolling_mape_pct": 1.84,
    "naive_mape_pct": 2.10,
    "directional_accuracy": 0.58,
    "n_matured": 40,
}


def test_same_inputs_hit_new_model_version_misses_with_real_minilm(
    tmp_path, make_inputs, minilm_embedder
) -> None:
    llm = DeterministicAnalystLLM()
    inputs = make_inputs(model_version="3")
    with ReportCache(path=tmp_path / "qdrant", embedder=minilm_embedder) as cache:
        cold = write_report(inputs, llm, cache=cache)
        assert cold.cache_hit is False
        warm = write_report(make_inputs(model_version="3"), llm, cache=cache)
        assert warm.cache_hit is True
        assert (warm.markdown, warm.verdict, warm.author) == (
            cold.markdown,
            cold.verdict,
            cold.author,
        )
        assert warm.events[0].startswith("cache hit (similarity 1.0000")
        # A retrained model (new version) with the very same forecast is a different report.
        assert write_report(make_inputs(model_version="4"), llm, cache=cache).cache_hit is False
        assert (
            write_report(make_inputs(as_of=date(2024, 6, 4)), llm, cache=cache).cache_hit is False
        )
        assert (cache.stats.hits, cache.stats.misses, cache.stats.stores) == (1, 3, 3)
        assert cache.stats.hit_rate == 0.25
        assert cache.count() == 3
    # Persistent: a new process (here a new client) on the same folder still hits.
    with ReportCache(path=tmp_path / "qdrant", embedder=minilm_embedder) as reopened:
        assert reopened.lookup(inputs, requested_by=llm.name) is not None
        # The same facts as the report prints them (an accuracy of 58.01 % is "58.0%", a drift
        # share of 12.51 % is "12.5%") in a differently written request: MiniLM at the default
        # threshold decides, and it is a hit.
        reworded = make_inputs(
            model_version="3",
            performance={**GOOD_METRICS, "directional_accuracy": 0.5801},
            drift={"drift_share": 0.1251, "drifted": False},
        )
        assert reworded.cache_query_text() != inputs.cache_query_text()
        semantic = reopened.lookup(reworded, requested_by=llm.name)
        assert semantic is not None
        similarity = float(semantic.events[0].split("similarity ")[1].split(",")[0])
        assert reopened.similarity_threshold == 0.95 <= similarity < 1.0
        assert reopened.stats.hits == 2
    assert minilm_loaded() and load_minilm.cache_info().misses == 1  # loaded once per process


def test_a_hit_never_changes_a_stated_fact_with_real_minilm(
    tmp_path, make_inputs, minilm_embedder
) -> None:
    # Issue #15: the same forecast, but the drift alarm went from 12.5 % to 60 % of features and
    # the rolling MAPE from 1.84 % to 3.5 %. MiniLM puts the two request texts at ~0.9995, above
    # the default threshold, so before the facts fingerprint this served the cached BULLISH /
    # Medium report that says "no drift alarm".
    llm = DeterministicAnalystLLM()
    calm = make_inputs(model_version="3")
    drifted = make_inputs(
        model_version="3",
        performance={**GOOD_METRICS, "rolling_mape_pct": 3.5},
        drift={"drift_share": 0.6, "drifted": True},
    )
    similarity = sum(
        a * b for a, b in zip(*minilm_embedder.embed(
            [calm.cache_query_text(), drifted.cache_query_text()]), strict=True)
    )
    assert similarity > 0.99  # the embedding alone cannot tell them apart
    with ReportCache(path=tmp_path / "qdrant", embedder=minilm_embedder) as cache:
        assert cache.similarity_threshold == 0.95
        stored = write_report(calm, llm, cache=cache)
        assert (stored.verdict.stance, stored.verdict.confidence) == ("BULLISH", "Medium")
        assert "12.5% of features drifted (no drift alarm)" in stored.markdown
        assert cache.lookup(drifted, requested_by=llm.name) is None
        fresh = write_report(drifted, llm, cache=cache)
        assert fresh.cache_hit is False
        assert (fresh.verdict.stance, fresh.verdict.confidence) == ("NEUTRAL", "Low")
        assert "60.0% of features drifted (drift alarm)" in fresh.markdown
        assert "Rolling MAPE:** 3.50%" in fresh.markdown
        # Each set of facts is now its own entry; both re-runs hit their own report.
        assert write_report(calm, llm, cache=cache).markdown == stored.markdown
        assert write_report(drifted, llm, cache=cache).markdown == fresh.markdown
        assert (cache.stats.hits, cache.stats.stores, cache.count()) == (2, 2, 2)



def test_hit_skips_the_graph_and_the_llm(
    tmp_path, make_inputs, scripted_llm, answer, fake_embedder
) -> None:
    llm, fake = scripted_llm(answer("BULLISH"))  # one answer only: a second graph run would raise
    inputs = make_inputs(final_return_pct=2.0)
    cache = ReportCache(path=tmp_path / "q", embedder=fake_embedder)
    first = write_report(inputs, llm, cache=cache)
    second = write_report(inputs, llm, cache=cache)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.author == "fake:scripted" and len(fake.calls) == 1
    # The writer is part of the key: a deterministic run does not reuse the LLM's report.
    assert cache.lookup(inputs, requested_by="deterministic-analyst") is None
    cache.close()


def test_a_different_range_for_the_same_forecast_is_a_miss(tmp_path, make_inputs, fake_embedder):
    # The point forecast is the same; only the quantiles and p_up differ. A cached report states
    # its range, so it must never be served for another one (nor for an older lake's forecast).
    llm = DeterministicAnalystLLM()
    with ReportCache(
        path=tmp_path / "q", embedder=fake_embedder, similarity_threshold=0.0
    ) as cache:
        stored = write_report(make_inputs(daily_vol=0.015), llm, cache=cache)
        assert write_report(make_inputs(daily_vol=0.015), llm, cache=cache).cache_hit is True
        for other in (make_inputs(daily_vol=0.03), make_inputs(daily_vol=None)):
            fresh = write_report(other, llm, cache=cache)
            assert fresh.cache_hit is False and fresh.markdown != stored.markdown
        assert (cache.stats.hits, cache.stats.stores) == (1, 3)


def test_similarity_threshold_applies_on_top_of_the_fingerprint(
    tmp_path, make_inputs, fake_embedder
) -> None:
    llm = DeterministicAnalystLLM()
    stored = make_inputs()
    # Same facts as printed (an accuracy of 58.01 % is "58.0%"), but the request text differs.
    same_facts = make_inputs(performance={**GOOD_METRICS, "directional_accuracy": 0.5801})
    assert report_fingerprint(same_facts) == report_fingerprint(stored)
    assert same_facts.cache_query_text() != stored.cache_query_text()
    loose = ReportCache(path=tmp_path / "q", embedder=fake_embedder, similarity_threshold=0.5)
    loose.store(stored, write_report(stored, llm), requested_by=llm.name)
    assert loose.lookup(same_facts, requested_by=llm.name) is not None
    # Newer metrics are new facts: a miss even at a threshold of 0 (the fingerprint decides).
    newer = make_inputs(performance={**GOOD_METRICS, "rolling_mape_pct": 1.91, "n_matured": 41})
    loose.similarity_threshold = 0.0
    assert loose.lookup(newer, requested_by=llm.name) is None
    loose.close()
    strict = ReportCache(path=tmp_path / "q", embedder=fake_embedder, similarity_threshold=0.9999)
    assert strict.lookup(same_facts, requested_by=llm.name) is None
    assert strict.lookup(stored, requested_by=llm.name) is not None
    strict.close()


def test_rejected_and_fallback_reports_are_not_cached(
    tmp_path, make_inputs, scripted_llm, answer, fake_embedder
) -> None:
    cache = ReportCache(path=tmp_path / "q", embedder=fake_embedder)
    down = make_inputs(final_return_pct=-2.0)
    llm, _ = scripted_llm(answer("BULLISH"), answer("BULLISH"))  # critic rejects twice
    rejected = write_report(down, llm, cache=cache)
    assert rejected.critic_approved is False
    fallback_llm, _ = scripted_llm("no verdict here", "still none")
    fallback = write_report(make_inputs(final_return_pct=1.0), fallback_llm, cache=cache)
    assert fallback.author == "deterministic-analyst"
    assert (cache.stats.stores, cache.stats.skipped_stores) == (0, 2)
    assert cache.count() == 0
    cache.close()


def test_locked_embedded_store_degrades_to_a_miss(tmp_path, make_inputs, fake_embedder) -> None:
    llm = DeterministicAnalystLLM()
    inputs = make_inputs()
    owner = ReportCache(path=tmp_path / "q", embedder=fake_embedder)
    write_report(inputs, llm, cache=owner)  # opens and holds the folder
    other = ReportCache(path=tmp_path / "q", embedder=fake_embedder, lock_wait_s=0.3)
    result = write_report(inputs, llm, cache=other)
    assert result.cache_hit is False and result.critic_approved  # the report is still written
    assert other.stats.unavailable == 2  # the lookup and the store
    owner.close()
    assert other.lookup(inputs, requested_by=llm.name) is not None
    other.close()


def test_ollama_embeddings_when_configured_and_reachable(
    tmp_path, make_inputs, stub_ollama
) -> None:
    llm = DeterministicAnalystLLM()
    cache = make_report_cache(
        qdrant_path=tmp_path / "q", ollama_url=stub_ollama, ollama_embed_model="stub-embed"
    )
    assert isinstance(cache.embedder, OllamaEmbedder)
    assert cache.collection == "agent_reports__ollama-stub-embed"
    inputs = make_inputs()
    assert write_report(inputs, llm, cache=cache).cache_hit is False
    assert write_report(inputs, llm, cache=cache).cache_hit is True
    # Same facts, a differently written request: compared through the Ollama embedding (< 1).
    newer = make_inputs(performance={**GOOD_METRICS, "directional_accuracy": 0.5801})
    semantic = cache.lookup(newer, requested_by=llm.name)
    assert semantic is not None and "similarity 1.0000" not in semantic.events[0]
    cache.close()


def test_unreachable_ollama_embeddings_fall_back_to_minilm(tmp_path, closed_port_url) -> None:
    cache = make_report_cache(
        qdrant_path=tmp_path / "q", ollama_url=closed_port_url, ollama_embed_model="stub-embed"
    )
    assert isinstance(cache.embedder, MiniLMEmbedder)
    assert cache.collection == "agent_reports__all-MiniLM-L6-v2"


def test_qdrant_server_down_degrades_to_a_miss(make_inputs, fake_embedder, closed_port_url) -> None:
    cache = ReportCache(url=closed_port_url, embedder=fake_embedder)
    result = write_report(make_inputs(), DeterministicAnalystLLM(), cache=cache)
    assert result.cache_hit is False and result.critic_approved
    assert (cache.stats.unavailable, cache.stats.misses, cache.stats.stores) == (2, 1, 0)
