"""Load benchmark of the serving API on a real HTTP server over loopback.

Measures GET /forecasts/{ticker} and GET /forecasts/latest against a bare FastAPI endpoint that
returns a constant, in the same run on the same machine, and prints p50/p99 latency, requests/s
and the ratio to the trivial endpoint:

    python benchmarks/bench_serving.py                      # builds a lake for 12 tickers first
    python benchmarks/bench_serving.py --home .stock_assets # or serve an existing project home

Each endpoint is measured twice: latency with one client sending requests back to back (what one
user sees), then throughput with `--concurrency` clients for `--duration` seconds in all (what the
server sustains; every non-200 answer or broken connection counts as an error), in `--rounds`
rounds that alternate between the endpoints so a change in machine load skews no ratio. The servers are uvicorn
processes (`--workers`, default 1, leaving a core for this client), the client is a minimal
keep-alive HTTP/1.1 loop on uvloop, so the server, not the client, is what gets measured.

The API servers run as deployed, with the rate limiter on (serving/ratelimit.py), at a limit far
above what this client can send (BENCH_RATE_LIMIT), so every request pays for its count and none
is refused; a diagnostic row serves the ticker endpoint with the limiter off, to show its cost.

Targets (issue 5): p50 < 5 ms, >= 1000 req/s, >= 0.7 of the trivial endpoint's throughput, zero
errors under 50 concurrent clients for 30 s. Run the script; it prints whether each is met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

from stock_assets.tickers import load_watchlist

REPO = Path(__file__).resolve().parents[1]
# The project's main tickers (watchlist.yaml), the same twelve every benchmark uses.
TICKERS_12 = tuple(load_watchlist(REPO / "watchlist.yaml"))

# The baseline: the cheapest endpoint FastAPI can serve (`--app-dir benchmarks bench_serving:trivial_app`).
trivial_app = FastAPI()


@trivial_app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@dataclass
class Phase:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float = float("nan")  # CPU time the server process(es) used in the phase

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


# -- the load client ---------------------------------------------------------------------------


async def _client(
    port: int, path: str, stop_at: float, latencies: list[int], errors: list[str]
) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    reader = writer = None
    while time.perf_counter() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            started = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter_ns() - started)
            if status != 200:
                errors.append(f"HTTP {status}")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _run_phase(port: int, path: str, concurrency: int, seconds: float) -> Phase:
    latencies: list[int] = []
    errors: list[str] = []
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        *(_client(port, path, stop_at, latencies, errors) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    if not latencies:
        return Phase(0, len(errors), elapsed, float("nan"), float("nan"))
    return Phase(
        requests=len(latencies),
        errors=len(errors),
        seconds=elapsed,
        p50_ms=latencies[len(latencies) // 2] / 1e6,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e6,
    )


def merge(phases: list[Phase]) -> Phase:
    """Rounds of one endpoint as one phase (percentiles: the worst round's, conservatively)."""
    return Phase(
        requests=sum(p.requests for p in phases),
        errors=sum(p.errors for p in phases),
        seconds=sum(p.seconds for p in phases),
        p50_ms=max(p.p50_ms for p in phases),
        p99_ms=max(p.p99_ms for p in phases),
        server_cpu_s=sum(p.server_cpu_s for p in phases),
    )


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its children (uvicorn workers), from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(c) for c in children)
        except (OSError, ValueError, IndexError):
            continue
    return total


def measured(pid: int, port: int, path: str, concurrency: int, seconds: float) -> Phase:
    before = process_cpu_seconds(pid)
    phase = run_phase(port, path, concurrency, seconds)
    phase.server_cpu_s = process_cpu_seconds(pid) - before
    return phase


def run_phase(port: int, path: str, concurrency: int, seconds: float) -> Phase:
    try:
        import uvloop

        return uvloop.run(_run_phase(port, path, concurrency, seconds))
    except ImportError:
        return asyncio.run(_run_phase(port, path, concurrency, seconds))


# -- servers and data ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    target: str, port: int, workers: int, env: dict[str, str], app_dir: Path
) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "uvicorn", target, "--app-dir", str(app_dir), "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True)


def wait_until_up(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.2)


# Diagnostic rows, not targets: the ticker endpoint with the micro-cache off (serving/microcache.py),
# and with the rate limiter off.
UNCACHED = "  ..same, no micro-cache"
UNLIMITED = "  ..same, no rate limiter"
DIAGNOSTIC = (UNCACHED, UNLIMITED)
# Per client per route: ~1.7 M requests a second, far above any rate one loopback client reaches.
BENCH_RATE_LIMIT = "100000000/minute"


def build_lake(root: Path, tickers: tuple[str, ...]) -> Path:
    """The serving tests' lake, at benchmark size: prices, tiny models, a 30-session back-test,
    the daily job and agent reports, all materialized by the real assets
    (`stock_assets.testing.build_serving_home`). Returns the lake folder."""
    from stock_assets.testing import build_serving_home

    build_serving_home(root, tickers)
    return root / "home" / "lake"


def fetch_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


# -- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home", help="existing project home to serve (default: build a temporary one)"
    )
    parser.add_argument("--tickers", type=int, default=12, help="tickers in the built lake (1-12)")
    parser.add_argument("--ticker", default="AAPL", help="ticker for GET /forecasts/{ticker}")
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="seconds of load per endpoint (split into --rounds interleaved rounds)",
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--latency-seconds", type=float, default=5.0, help="seconds of the 1-client phase"
    )
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    temp = None
    if args.home:
        lake = Path(args.home).resolve() / "lake"
    else:
        temp = tempfile.TemporaryDirectory(prefix="bench_serving_")
        started = time.perf_counter()
        lake = build_lake(Path(temp.name), TICKERS_12[: max(1, min(12, args.tickers))])
        print(f"built a lake for {args.tickers} tickers in {time.perf_counter() - started:.1f}s: {lake}")

    env = {**os.environ, "SERVING_LAKE_DIR": str(lake), "PYTHONPATH": str(REPO),
           "SERVING_RATE_LIMIT_ENABLED": "true", "SERVING_RATE_LIMIT_DEFAULT": BENCH_RATE_LIMIT}
    env.pop("STOCK_ASSETS_API_KEY", None)
    api_port, trivial_port, uncached_port = free_port(), free_port(), free_port()
    unlimited_port = free_port()
    servers = [
        start_server("serving.main:app", api_port, args.workers, env, REPO),
        start_server(
            "bench_serving:trivial_app", trivial_port, args.workers, env, REPO / "benchmarks"
        ),
        # The same app without its micro-cache: what FastAPI's routing and validation cost.
        start_server("serving.main:app", uncached_port, args.workers,
                     {**env, "SERVING_MICROCACHE": "false"}, REPO),
        start_server("serving.main:app", unlimited_port, args.workers,
                     {**env, "SERVING_RATE_LIMIT_ENABLED": "false"}, REPO),
    ]
    try:
        wait_until_up(f"http://127.0.0.1:{api_port}/health")
        wait_until_up(f"http://127.0.0.1:{trivial_port}/ping")
        wait_until_up(f"http://127.0.0.1:{uncached_port}/health")
        wait_until_up(f"http://127.0.0.1:{unlimited_port}/health")
        print(f"rate limiter on at {BENCH_RATE_LIMIT} per client per route")
        forecast = fetch_json(f"http://127.0.0.1:{api_port}/forecasts/{args.ticker}")
        latest = fetch_json(f"http://127.0.0.1:{api_port}/forecasts/latest")
        print(
            f"serving {latest['count']} tickers; /forecasts/{args.ticker}: as of "
            f"{forecast['as_of_date']}, {forecast['horizon']} steps"
        )
        api_pid, trivial_pid = servers[0].pid, servers[1].pid
        targets = [
            ("trivial GET /ping", trivial_pid, trivial_port, "/ping"),
            (f"GET /forecasts/{args.ticker}", api_pid, api_port, f"/forecasts/{args.ticker}"),
            ("GET /forecasts/latest", api_pid, api_port, "/forecasts/latest"),
            (UNCACHED, servers[2].pid, uncached_port, f"/forecasts/{args.ticker}"),
            (UNLIMITED, servers[3].pid, unlimited_port, f"/forecasts/{args.ticker}"),
        ]
        for _, _, port, path in targets:
            run_phase(port, path, 4, 2.0)  # warm caches and connections
        single = {
            name: measured(pid, port, path, 1, args.latency_seconds)
            for name, pid, port, path in targets
        }
        # Throughput in interleaved rounds, so that a change in machine load (other processes on
        # a shared box) hits every endpoint alike instead of skewing the ratios.
        rounds: dict[str, list[Phase]] = {name: [] for name, *_ in targets}
        for _ in range(args.rounds):
            for name, pid, port, path in targets:
                rounds[name].append(
                    measured(pid, port, path, args.concurrency, args.duration / args.rounds)
                )
        results = {
            name: {"single": single[name], "loaded": merge(rounds[name])} for name, *_ in targets
        }
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=15)
        if temp is not None:
            temp.cleanup()

    baseline = results[targets[0][0]]["loaded"].rps
    print()
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"uvicorn workers={args.workers}, {args.concurrency} clients x {args.duration:.0f}s"
    )
    header = (
        f"{'endpoint':<26} {'p50 1-client':>12} {'p99 1-client':>12} {'req/s':>8} "
        f"{'p50 loaded':>11} {'p99 loaded':>11} {'errors':>7} {'vs trivial':>10} "
        f"{'server CPU/req':>14}"
    )
    print(header)
    print("-" * len(header))
    verdicts = []
    for name, phases in results.items():
        single, loaded = phases["single"], phases["loaded"]
        ratio = loaded.rps / baseline if baseline else float("nan")
        cpu_us = loaded.server_cpu_s / loaded.requests * 1e6 if loaded.requests else float("nan")
        print(
            f"{name:<26} {single.p50_ms:>10.2f}ms {single.p99_ms:>10.2f}ms {loaded.rps:>8.0f} "
            f"{loaded.p50_ms:>9.2f}ms {loaded.p99_ms:>9.2f}ms {loaded.errors:>7d} {ratio:>10.2f} "
            f"{cpu_us:>12.0f}us"
        )
        if name != targets[0][0] and name not in DIAGNOSTIC:
            verdicts += [
                (f"{name}: p50 < 5 ms (1 client)", single.p50_ms < 5),
                (f"{name}: >= 1000 req/s", loaded.rps >= 1000),
                (f"{name}: >= 0.7 x trivial throughput", ratio >= 0.7),
                (
                    f"{name}: zero errors ({args.concurrency} clients, {args.duration:.0f}s)",
                    loaded.errors == 0,
                ),
            ]
    trivial_cpu = results[targets[0][0]]["loaded"]
    print(
        "\nserver CPU per request is what the machine's other load cannot skew: trivial/endpoint "
        "CPU per request estimates the throughput ratio on an idle box:"
    )
    for name, phases in list(results.items())[1:]:
        loaded = phases["loaded"]
        if loaded.requests and trivial_cpu.requests and loaded.server_cpu_s:
            estimate = (trivial_cpu.server_cpu_s / trivial_cpu.requests) / (
                loaded.server_cpu_s / loaded.requests
            )
            print(f"  {name}: {estimate:.2f}")
    print()
    for label, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    name: {k: {**asdict(v), "rps": v.rps} for k, v in p.items()}
                    for name, p in results.items()
                },
                indent=2,
            )
        )
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
