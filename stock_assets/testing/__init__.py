"""A public harness for driving the real code location on a throw-away project home.

Tests, benchmarks and users' own experiments use the same objects, so there is one way to run the
graph outside the CLI: `project_home(root)` gives a `LoopHome` (a fresh home, a real Dagster
instance, resources bound to it) whose methods materialize the real assets and jobs in-process.
`build_serving_home` fills a home with every table the API reads. Nothing here is a mock.
"""

from stock_assets.testing.home import (
    QUIET,
    TINY_MODEL,
    LoopHome,
    environment,
    failures,
    loop_home,
)
from stock_assets.testing.serving_home import (
    REPORT_ENV_VARS,
    MapeVerdict,
    build_serving_home,
    serving_home,
)

__all__ = [
    "QUIET",
    "REPORT_ENV_VARS",
    "TINY_MODEL",
    "LoopHome",
    "MapeVerdict",
    "build_serving_home",
    "environment",
    "failures",
    "loop_home",
    "serving_home",
]
