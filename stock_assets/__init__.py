"""stock_assets: a Dagster asset graph from daily prices to self-healing forecasts.

The one place Dagster's Beta/Preview warnings are filtered: the graph knowingly uses partitioned
asset checks (preview), a partition mapping with nonexistent upstreams and single-run backfill
policies (beta), and every entry point (the CLI, the code location, the tests) imports this
package first. The classes come from dagster_shared (a 20 ms import), because serving imports
`stock_assets.settings` and must not load Dagster.
"""

import warnings

from dagster_shared.utils.warnings import BetaWarning, PreviewWarning

warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
