"""Agents stage: the daily report per (date, ticker) and its quality check (resources are bound in
stock_assets/definitions.py)."""

import dagster as dg

from stock_assets.agents.assets import agent_report

defs = dg.Definitions(assets=[agent_report])
