"""Ingestion: price sources, raw price assets and their data-quality checks."""
