"""Stages depend on each other in data-flow order only, so each folder can be read on its own.

A stage may import the stages before it (ingestion → features → datasets → modeling →
forecasting → monitoring → strategy → agents), never one after it, so there are no import cycles;
and no stage's definitions module imports another stage's definitions (a sensor that launches
another stage's job imports that stage's `jobs` module).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stock_assets"
STAGE_ORDER = (
    "ingestion", "features", "datasets", "modeling", "forecasting", "monitoring", "strategy",
    "agents",
)  # fmt: skip


def stage_imports() -> list[tuple[str, str, str]]:
    """(importing stage, file, imported module) for every stock_assets.<stage> import."""
    found = []
    for stage in STAGE_ORDER:
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                modules = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                found += [
                    (stage, path.relative_to(PACKAGE).as_posix(), module)
                    for module in modules
                    if module.startswith("stock_assets.")
                ]
    return found


def test_every_stage_folder_is_in_the_order():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "definitions.py").is_file()}
    assert folders == set(STAGE_ORDER)


def test_stages_import_only_earlier_stages():
    rank = {stage: i for i, stage in enumerate(STAGE_ORDER)}
    backwards = [
        f"{file} imports {module}"
        for stage, file, module in stage_imports()
        if module.split(".")[1] in rank and rank[module.split(".")[1]] > rank[stage]
    ]
    assert backwards == []


def test_no_definitions_module_imports_another_stages_definitions():
    crossing = [
        f"{file} imports {module}"
        for stage, file, module in stage_imports()
        if module.endswith(".definitions") and module.split(".")[1] != stage
    ]
    assert crossing == []
