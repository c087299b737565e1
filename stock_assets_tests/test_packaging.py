"""What a user installs: the wheel holds the code location, serving and the test harness, never
the tests; benchmarks drive the graph through the public harness, not the tests' helpers."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_packages_and_not_the_tests():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    # pyproject.toml's `packages.find` finds namespace packages too (folders without __init__).
    packages = set(find_namespace_packages(where=str(REPO_ROOT), include=include))
    assert {"stock_assets", "stock_assets.testing", "serving"} <= packages
    assert not [p for p in packages if p.startswith("stock_assets_tests")]


def test_no_benchmark_or_shipped_module_imports_the_tests():
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for folder in ("benchmarks", "stock_assets", "serving")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if "stock_assets_tests" in path.read_text()
    ]
    assert offenders == []
