"""The report stage's two resources: who writes the report, and where finished reports are cached.

Both are thin configuration over the agents core (llm.make_report_llm, cache.make_report_cache), so
the same choices (Ollama or the deterministic analyst; embedded Qdrant or a server) are made the
same way in a Dagster run, a test or a benchmark. Nothing heavy is imported at load time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from stock_assets.agents.cache import DEFAULT_SIMILARITY_THRESHOLD, ReportCache

QDRANT_API_KEY_ENV = "QDRANT_API_KEY"

if TYPE_CHECKING:
    from stock_assets.agents.llm import ReportLLM
    from stock_assets.agents.state import ReportInputs, ReportResult
    from stock_assets.settings import Settings


class ReportLLMResource(dg.ConfigurableResource):
    """The report writer: ChatOllama when a URL and model are set and the server answers, else the
    deterministic analyst (decided per step, so a server that comes back is used at once)."""

    ollama_base_url: str | None = Field(default=None, description="e.g. http://ollama:11434")
    ollama_model: str | None = Field(default=None, description="e.g. llama3.2:3b")
    probe_timeout_s: float = Field(default=0.5, gt=0, description="reachability probe timeout")
    request_timeout_s: float = Field(default=120.0, gt=0, description="one chat request's timeout")

    def get_llm(self) -> ReportLLM:
        from stock_assets.agents.llm import make_report_llm

        return make_report_llm(
            self.ollama_base_url,
            self.ollama_model,
            probe_timeout_s=self.probe_timeout_s,
            request_timeout_s=self.request_timeout_s,
        )


class StepReportCache(ReportCache):
    """A ReportCache that releases the embedded store after every lookup and store.

    Embedded Qdrant locks its folder for one client at a time, and a step holds its cache while the
    graph runs and the embedder loads (seconds). Releasing after each call means parallel steps only
    ever wait for one scroll or one upsert; a lock that outlasts `lock_wait_s` is still a miss.
    """

    def lookup(self, inputs: ReportInputs, requested_by: str | None = None) -> ReportResult | None:
        try:
            return super().lookup(inputs, requested_by=requested_by)
        finally:
            self.close()

    def store(
        self, inputs: ReportInputs, result: ReportResult, requested_by: str | None = None
    ) -> bool:
        try:
            return super().store(inputs, result, requested_by=requested_by)
        finally:
            self.close()


class ReportCacheResource(dg.ConfigurableResource):
    """The semantic report cache: embedded Qdrant in a folder by default, a Qdrant server by URL.

    Embeddings come from Ollama when `ollama_base_url` and `ollama_embed_model` are set and the
    server answers, else from the bundled MiniLM (each embedder has its own collection).
    """

    qdrant_path: str | None = Field(
        default=None, description="embedded store folder (build_resources: <home>/qdrant)"
    )
    qdrant_url: str | None = Field(default=None, description="Qdrant server; wins over the path")
    qdrant_api_key: str | None = Field(default=None, description="Qdrant server API key")
    similarity_threshold: float = Field(default=DEFAULT_SIMILARITY_THRESHOLD, gt=0, le=1)
    ollama_base_url: str | None = Field(default=None, description="Ollama for embeddings")
    ollama_embed_model: str | None = Field(default=None, description="e.g. nomic-embed-text")
    lock_wait_s: float = Field(default=5.0, ge=0, description="wait for a locked embedded folder")

    def resolved_path(self) -> Path:
        """The embedded store's folder; build_resources always names one (`<home>/qdrant`)."""
        if not self.qdrant_path:
            raise ValueError("report_cache needs qdrant_path or qdrant_url (build_resources sets one)")
        return Path(self.qdrant_path)

    @contextmanager
    def open(self) -> Iterator[ReportCache]:
        """A cache for one step, closed when the step is done (the embedded folder's lock too)."""
        from stock_assets.agents.cache import make_report_cache

        configured = make_report_cache(
            qdrant_path=None if self.qdrant_url else self.resolved_path(),
            qdrant_url=self.qdrant_url,
            qdrant_api_key=self.qdrant_api_key,
            ollama_url=self.ollama_base_url,
            ollama_embed_model=self.ollama_embed_model,
            similarity_threshold=self.similarity_threshold,
        )
        cache = StepReportCache(
            path=configured.path,
            url=configured.url,
            api_key=configured.api_key,
            embedder=configured.embedder,
            similarity_threshold=configured.similarity_threshold,
            lock_wait_s=self.lock_wait_s,
        )
        try:
            yield cache
        finally:
            cache.close()


def report_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """`report_llm` and `report_cache` for build_resources.

    Locally every server is optional: no OLLAMA_BASE_URL/OLLAMA_MODEL means the deterministic
    analyst, no QDRANT_URL means embedded Qdrant under the home. In production build_resources has
    already checked (production_services) that every server is named.
    """
    agents = settings.agents
    # The key is a secret: bound as an EnvVar (Dagster resolves it from the process's own
    # environment, where it came from), so its value never shows in the UI's config.
    api_key = dg.EnvVar(QDRANT_API_KEY_ENV) if agents.qdrant_api_key else None
    return {
        "report_llm": ReportLLMResource(
            ollama_base_url=agents.ollama_base_url, ollama_model=agents.ollama_model
        ),
        "report_cache": ReportCacheResource(
            qdrant_path=None if agents.qdrant_url else str(settings.paths.qdrant_dir),
            qdrant_url=agents.qdrant_url,
            qdrant_api_key=api_key,
            ollama_base_url=agents.ollama_base_url,
            ollama_embed_model=agents.ollama_embed_model,
        ),
    }
