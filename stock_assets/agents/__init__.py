"""Daily written analysis per ticker: a LangGraph team, LLM or template writer, Qdrant cache."""
