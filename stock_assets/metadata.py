"""Metadata a person can look at in the Dagster UI: markdown tables and embedded PNG charts."""

from __future__ import annotations

import base64
import io

import dagster as dg
import polars as pl


def markdown_table(frame: pl.DataFrame, float_digits: int = 4) -> str:
    """A GitHub-style markdown table (no tabulate dependency)."""

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.{float_digits}f}"
        return str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def figure_markdown(figure) -> dg.MetadataValue:
    """Embed a matplotlib figure as an inline PNG in markdown metadata, then close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![chart](data:image/png;base64,{encoded})")


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (safe in any worker process)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt
