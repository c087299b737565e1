"""A run of a real job in its own process, the CLI's way, that can stall at one named point so a
test can `kill -9` it there (deterministic: the test waits for the stall marker, never sleeps).

    python -m stock_assets_tests.faults.worker LAUNCH_JSON [--stall POINT --marker FILE] [--sweep]

POINT is where the process parks (after writing FILE) until it is killed:
    lake_write:<asset>   inside the lake's atomic write of that asset: the temp file is written,
                         not yet fsync'ed or moved over the partition file
    train                while the trained model's artifacts are logged (its MLflow run RUNNING)
    register             in MLflow's create_model_version (the training run has ended)
    feast_materialize    in Feast's materialize to the online store (after apply)

The launch goes through `stock_assets.launcher.execute`, exactly what `python -m stock_assets
materialize` runs, so the run carries the launcher's tags; `--sweep` first calls the CLI's
start-up sweep. The last stdout line is the outcome as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path


def _stall(marker: Path, point: str, detail: str) -> None:
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"point": point, "pid": os.getpid(), "detail": detail}))
    os.replace(tmp, marker)
    while True:  # parked until the test's SIGKILL
        signal.pause()


def install_stall(point: str, marker: Path) -> None:
    if point.startswith("lake_write:"):
        asset = point.split(":", 1)[1]
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if f"/lake/{asset}/" in path and path.endswith(".tmp"):
                _stall(marker, point, path)
            real_fsync(fd)

        os.fsync = fsync
    elif point == "train":
        from stock_assets.modeling.registry import MlflowResource

        def log_model_artifacts(self, run_id, files):
            _stall(marker, point, run_id)

        MlflowResource.log_model_artifacts = log_model_artifacts
    elif point == "register":
        from mlflow import MlflowClient

        def create_model_version(self, name, *args, **kwargs):
            _stall(marker, point, name)

        MlflowClient.create_model_version = create_model_version
    elif point == "feast_materialize":
        from feast import FeatureStore

        def materialize(self, *args, **kwargs):
            _stall(marker, point, str(kwargs.get("feature_views")))

        FeatureStore.materialize = materialize
    else:
        raise SystemExit(f"unknown stall point {point!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("launch", help='{"label", "job", "partition_key", "ops": {op: config}}')
    parser.add_argument("--stall")
    parser.add_argument("--marker", type=Path)
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()

    from stock_assets.launcher import execute
    from stock_assets.plan import Launch

    if args.stall:
        install_stall(args.stall, args.marker)
    if args.sweep:
        from stock_assets.recovery import sweep_at_start

        sweep_at_start()
    spec = json.loads(args.launch)
    ops = tuple((op, tuple(config.items())) for op, config in spec.get("ops", {}).items())
    outcome = execute(Launch(spec.get("label", spec["job"]), spec["job"],
                             spec.get("partition_key"), ops=ops))
    print(json.dumps({"status": outcome.status, "detail": outcome.detail}))


if __name__ == "__main__":
    main()
