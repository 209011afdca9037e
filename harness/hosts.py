"""Several hosts on one machine: network namespaces joined by veth pairs to a bridge, each running real programs.

The topology of the production guide (docs/production.md), built for the multi-host tests and bench:

    root namespace (the test client, .1) ─┐
    edge  (HAProxy, .2)                   ├─ bridge in the "switch" namespace ── 10.<a>.<b>.0/24
    app1  (Rasa + action server, .11)     │
    app2  (Rasa + action server, .12)     │
    data  (PostgreSQL + Redis, .20)       ┘

Every program starts inside its namespace with `ip netns exec <ns> ...`, with the command lines and environment
that `make run` uses (onewindow/processes.py). The PostgreSQL cluster (`initdb` in the topology's folder, run as
the `postgres` user) and the Redis server are the topology's own, listening on the data host's veth address, so
every query and every lock crosses the veth network. Inside a namespace the standard ports are free (each
namespace has its own), so the servers use them: Rasa 5005, actions 5055, PostgreSQL 5432, Redis 6379, HAProxy
80. Namespace names and the subnet are random per run (`owmh-<6 hex>-<role>`); `Topology.stop` removes every
namespace, veth, process and folder it made, and `sweep_stale` removes what a killed run left behind (its
owner file names a dead process). Needs root, iproute2, haproxy, redis-server, initdb/pg_ctl.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import yaml
from sqlalchemy import create_engine, text

from harness.stack import MODEL
from onewindow.__main__ import seed
from onewindow.infra import haproxy
from onewindow.infra.haproxy import Address, Listener, Proxy, onewindow_proxy
from onewindow.processes import LOOPBACK, RASA, Program, action_server, rasa_server, shared_environment, write_endpoints
from onewindow.settings import PROJECT_ROOT
from onewindow.settings import variables as setting
from onewindow.storage.db import create_missing_databases

PREFIX = "owmh"
OWNERS = Path(tempfile.gettempdir())  # owmh-<hex>.owner: the pid of the run that made the namespaces
RASA_PORT, ACTIONS_PORT, POSTGRES_PORT, REDIS_PORT, EDGE_PORT, API_PORT, STATS_PORT = 5005, 5055, 5432, 6379, 80, 8080, 8404
STARTUP_SECONDS = 300
ANY_ADDRESS = "0.0.0.0"  # inside a namespace: its own loopback and veth only


@dataclass(frozen=True)
class Host:
    """One namespace: its role, its address on the test subnet and the switch-side end of its veth pair."""

    role: str
    namespace: str
    address: str
    switch_veth: str


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), check=check, capture_output=True, text=True)


def namespaces() -> List[str]:
    return [line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines() if line.strip()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale() -> List[str]:
    """Remove the namespaces (and their processes) of earlier runs whose owner process is gone; returns their names."""
    removed = []
    for name in namespaces():
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != PREFIX:
            continue
        owner = OWNERS / f"{PREFIX}-{parts[1]}.owner"
        try:
            pid = int(owner.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = 0
        if pid and alive(pid):
            continue  # a run still going (another test session or a bench)
        kill_namespace(name)
        removed.append(name)
        shutil.rmtree(OWNERS / f"{PREFIX}-{parts[1]}", ignore_errors=True)
        owner.unlink(missing_ok=True)
    return removed


def kill_namespace(name: str) -> None:
    """SIGKILL every process in namespace `name`, then delete it (its veth ends go with it)."""
    for pid in run("ip", "netns", "pids", name, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    run("ip", "netns", "delete", name, check=False)


def pick_subnet() -> ipaddress.IPv4Network:
    """A random 10.<100-250>.<0-255>.0/24 that no route of the root namespace covers."""
    routes = run("ip", "-4", "route", "show").stdout
    used = [ipaddress.ip_network(word, strict=False) for line in routes.splitlines() for word in line.split()[:1] if "/" in word]
    for _ in range(100):
        subnet = ipaddress.IPv4Network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise RuntimeError("no free 10.x.y.0/24 subnet")


def http_status(url: str, timeout: float = 3.0) -> Tuple[int, bytes]:
    """The status and body of GET `url` (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, ValueError):
        return 0, b""


def haproxy_config(edge: Host, apps: Sequence[Host], rasa_health_path: str = haproxy.READY_PATH, actions: bool = True) -> Proxy:
    """The edge host's HAProxy (onewindow/infra/haproxy.py): channels on :80, the HTTP API on :8080, stats on :8404
    and, with `actions`, the action servers on :5055 (every Rasa instance's action endpoint)."""
    rasa = [Address(host.address, RASA_PORT) for host in apps]
    listener = Listener(Address(edge.address, ACTIONS_PORT), [Address(host.address, ACTIONS_PORT) for host in apps])
    return onewindow_proxy(
        public=Address(edge.address, EDGE_PORT),
        api=Address(edge.address, API_PORT),
        rasa=rasa,
        stats=Address(edge.address, STATS_PORT),
        actions=listener if actions else None,
        rasa_health_path=rasa_health_path,
    )


@dataclass
class Topology:
    """Edge, `apps` app hosts and a data host as network namespaces on one bridge; `start()` brings everything up."""

    apps: int = 2
    workdir: Path = Path()
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    subnet: Optional[ipaddress.IPv4Network] = None
    hosts: Dict[str, Host] = field(default_factory=dict)
    processes: Dict[str, subprocess.Popen] = field(default_factory=dict)
    programs: Dict[str, Tuple[str, List[str], Dict[str, str], Path]] = field(default_factory=dict, repr=False)
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    stock: Optional[Path] = None  # a `rasa init` project (trained): its assistant on the app hosts instead of OneWindow
    lock_store: str = ""  # the lock store type in endpoints.yml
    pg_ctl_command: List[str] = field(default_factory=list, repr=False)
    _client_veth: str = ""

    # --- names and addresses -------------------------------------------------------------------------------
    def ns(self, role: str) -> str:
        return f"{PREFIX}-{self.run_id}-{role}"

    @property
    def app_roles(self) -> List[str]:
        return [f"app{n}" for n in range(1, self.apps + 1)]

    def address(self, role: str) -> str:
        return self.hosts[role].address

    @property
    def url(self) -> str:
        """The REST channel through HAProxy on the edge host."""
        return f"http://{self.address('edge')}:{EDGE_PORT}/webhooks/rest/webhook"

    def database_url(self, database: str = "onewindow") -> str:
        return f"postgresql://postgres@{self.address('data')}:{POSTGRES_PORT}/{database}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.address('data')}:{REDIS_PORT}/0"

    def rasa_url(self, role: str) -> str:
        return f"http://{self.address(role)}:{RASA_PORT}"

    # --- bringing it up --------------------------------------------------------------------------------------
    def start(self) -> "Topology":
        if os.geteuid() != 0:
            raise RuntimeError("network namespaces need root")
        if not MODEL.exists():
            raise RuntimeError(f"no trained model at {MODEL}: run `make train` first")
        sweep_stale()
        (OWNERS / f"{PREFIX}-{self.run_id}.owner").write_text(f"{os.getpid()}\n")
        if self.workdir == Path():
            self.workdir = OWNERS / f"{PREFIX}-{self.run_id}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # the postgres user reaches its cluster inside
        try:
            self._network()
            self._data_host()
            for role in self.app_roles:
                self._app_host(role)
            self._edge_host()
            self.wait_ready()
        except BaseException:
            for name, tail in self.logs():
                print(f"--- {name}\n{tail[-1500:]}")
            self.stop()
            raise
        return self

    def _network(self) -> None:
        self.subnet = pick_subnet()
        base = self.subnet.network_address
        switch = self.ns("sw")
        run("ip", "netns", "add", switch)
        run("ip", "netns", "exec", switch, "ip", "link", "add", "br0", "type", "bridge")
        run("ip", "netns", "exec", switch, "ip", "link", "set", "br0", "up")
        numbers = {"edge": 2, **{role: 10 + n for n, role in enumerate(self.app_roles, start=1)}, "data": 20}
        for role, number in numbers.items():
            namespace = self.ns(role)
            host_end, switch_end = f"ow{self.run_id}{role[:3]}{role[-1]}h", f"ow{self.run_id}{role[:3]}{role[-1]}s"
            address = str(base + number)
            run("ip", "netns", "add", namespace)
            run("ip", "link", "add", host_end, "type", "veth", "peer", "name", switch_end)
            run("ip", "link", "set", host_end, "netns", namespace)
            run("ip", "link", "set", switch_end, "netns", switch)
            inside = ("ip", "netns", "exec", namespace)
            run(*inside, "ip", "link", "set", host_end, "name", "eth0")
            run(*inside, "ip", "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
            run(*inside, "ip", "link", "set", "eth0", "up")
            run(*inside, "ip", "link", "set", "lo", "up")
            run("ip", "netns", "exec", switch, "ip", "link", "set", switch_end, "master", "br0", "up")
            self.hosts[role] = Host(role, namespace, address, switch_end)
        # the root namespace is the client host (.1): the tests' HTTP requests and database reads
        self._client_veth = f"ow{self.run_id}clih"
        run("ip", "link", "add", self._client_veth, "type", "veth", "peer", "name", f"ow{self.run_id}clis")
        run("ip", "link", "set", f"ow{self.run_id}clis", "netns", switch)
        run("ip", "netns", "exec", switch, "ip", "link", "set", f"ow{self.run_id}clis", "master", "br0", "up")
        run("ip", "addr", "add", f"{base + 1}/{self.subnet.prefixlen}", "dev", self._client_veth)
        run("ip", "link", "set", self._client_veth, "up")

    def _data_host(self) -> None:
        data = self.hosts["data"]
        cluster, sockets = self.workdir / "pgdata", self.workdir / "pgsock"
        for folder in (cluster, sockets):
            folder.mkdir(exist_ok=True)
            shutil.chown(folder, "postgres", "postgres")
        as_postgres = ("runuser", "-u", "postgres", "--")
        run(*as_postgres, "initdb", "-D", str(cluster), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with open(cluster / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.subnet} trust\n")
        options = f"-c listen_addresses={data.address} -p {POSTGRES_PORT} -k {sockets} -c fsync=off -c max_connections=200"
        log = cluster / "postgresql.log"  # a file the postgres user may write
        self.pg_ctl_command = [*as_postgres, "pg_ctl", "-D", str(cluster), "-l", str(log), "-w", "-t", "60"]
        run("ip", "netns", "exec", data.namespace, *self.pg_ctl_command, "-o", options, "start")
        create_missing_databases(self.database_url("onewindow"), self.database_url("tracker"))
        seed(self.database_url(), demo=True)
        redis = ["redis-server", "--bind", data.address, "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no"]
        self._spawn("redis", "data", redis + ["--protected-mode", "no", "--dir", str(self.workdir)], {})

    def _endpoints(self, role: str) -> Path:
        """endpoints.yml of the app host: the tracker store and the lock store on the data host, the action servers
        through the edge's HAProxy; for the stock assistant Rasa's own SQL tracker store and Redis lock store."""
        path = write_endpoints(self.workdir / f"endpoints-{role}.yml", self.database_url("tracker"), ACTIONS_PORT, self.redis_url)
        endpoints = yaml.safe_load(path.read_text())
        endpoints["action_endpoint"]["url"] = f"http://{self.address('edge')}:{ACTIONS_PORT}/webhook"
        if self.stock is not None:
            endpoints = {
                "tracker_store": {**endpoints["tracker_store"], "type": "SQL"},
                "lock_store": {"type": "redis", "url": self.address("data"), "port": REDIS_PORT, "db": 0},
            }
        path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
        self.lock_store = str(endpoints["lock_store"]["type"])
        return path

    def _app_host(self, role: str) -> None:
        endpoints = self._endpoints(role)
        env = {
            **shared_environment(os.environ, self.api_secret, endpoints),
            setting.DATABASE_URL.name: self.database_url(),
            setting.TRACKER_DATABASE_URL.name: self.database_url("tracker"),
            setting.LOCK_STORE_URL.name: self.redis_url,
        }
        if self.stock is not None:  # `rasa run` on the stock project's model: the REST channel, no action server
            command = [RASA, "run", "-m", str(self.stock / "models"), "-i", ANY_ADDRESS, "-p", str(RASA_PORT)]
            self._spawn(f"rasa-{role}", role, [*command, "--endpoints", str(endpoints)], env, cwd=self.stock)
            return
        actions = action_server(ACTIONS_PORT)
        self._spawn(f"actions-{role}", role, listening_anywhere(actions), {**env, **actions.env})
        rasa = rasa_server(int(role[3:]), RASA_PORT, MODEL, endpoints)
        self._spawn(f"rasa-{role}", role, listening_anywhere(rasa), {**env, **rasa.env})

    def _edge_host(self) -> None:
        env = shared_environment(os.environ, self.api_secret, self.workdir / "endpoints-app1.yml")
        apps = [self.hosts[r] for r in self.app_roles]
        proxy = haproxy_config(self.hosts["edge"], apps, "/" if self.stock else haproxy.READY_PATH, self.stock is None)
        config = haproxy.write(self.workdir / "haproxy.cfg", proxy, env)
        self._spawn("haproxy", "edge", haproxy.command(config), env)

    def _spawn(self, name: str, role: str, command: List[str], env: Dict[str, str], cwd: Path = PROJECT_ROOT) -> None:
        self.programs[name] = (role, command, env, cwd)
        self.start_program(name)

    def start_program(self, name: str) -> subprocess.Popen:
        """Start program `name` (again) in its host's namespace, its log appended to `<workdir>/<name>.log`."""
        role, command, env, cwd = self.programs[name]
        log = open(self.workdir / f"{name}.log", "ab")
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(role), *command],
            cwd=cwd,
            env=env or None,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes[name] = process
        return process

    # --- readiness ---------------------------------------------------------------------------------------------
    def ready(self, role: str) -> bool:
        """The app host's Rasa is ready (model loaded, databases reachable, not draining) and its action server answers."""
        rasa, _ = http_status(self.rasa_url(role) + haproxy.READY_PATH)
        if rasa == 404:  # a Rasa server without the readiness route: its root answers once the model is loaded
            rasa, _ = http_status(self.rasa_url(role) + "/")
        if self.stock is not None:
            return rasa == 200
        actions, _ = http_status(f"http://{self.address(role)}:{ACTIONS_PORT}{haproxy.READY_PATH}")
        return rasa == 200 and actions == 200

    def in_haproxy(self, role: str) -> bool:
        """HAProxy counts the app host's Rasa as up (its health check passes)."""
        return self.haproxy_states().get(f"rasa-{self.app_roles.index(role) + 1}") == "UP"

    def haproxy_states(self) -> Dict[str, str]:
        """Each Rasa server's state in HAProxy (rasa-1, rasa-2: "UP", "DOWN", ...)."""
        return {server: cells[17] for server, cells in self._haproxy_servers("rasa").items()}

    def served(self, backend: str = "rasa") -> Dict[str, int]:
        """Requests each server of `backend` has been sent since HAProxy started (its stats: `stot`)."""
        return {server: int(cells[7] or 0) for server, cells in self._haproxy_servers(backend).items()}

    def _haproxy_servers(self, backend: str) -> Dict[str, List[str]]:
        """The CSV row of HAProxy's stats page for each server of `backend`."""
        status, body = http_status(f"http://{self.address('edge')}:{STATS_PORT}/stats;csv")
        if status != 200:
            return {}
        rows = (line.split(",") for line in body.decode().splitlines())
        return {c[1]: c for c in rows if len(c) > 17 and c[0] == backend and c[1] not in ("FRONTEND", "BACKEND")}

    def wait_haproxy(self, role: str, state: str, timeout: float = 60.0) -> None:
        """Wait until HAProxy counts the app host's Rasa as `state` ("UP" or "DOWN")."""
        server = f"rasa-{self.app_roles.index(role) + 1}"
        deadline = time.monotonic() + timeout
        while self.haproxy_states().get(server) != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy did not see {server} {state} within {timeout:.0f} s: {self.haproxy_states()}")
            time.sleep(0.2)

    def wait_ready(self, roles: Optional[Sequence[str]] = None, timeout: float = STARTUP_SECONDS) -> None:
        """Wait until every app host in `roles` (all by default) is ready and HAProxy sends it traffic."""
        wanted = list(roles or self.app_roles)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = [name for name, p in self.processes.items() if p.poll() is not None]
            if exited:
                raise RuntimeError(f"exited during start-up: {exited}; logs in {self.workdir}")
            if all(self.ready(role) for role in wanted) and self.answers():
                return
            time.sleep(1)
        raise RuntimeError(f"not ready after {timeout:.0f} s: {wanted}; logs in {self.workdir}")

    def answers(self) -> bool:
        """The REST channel answers through HAProxy."""
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"sender": f"ready-{secrets.token_hex(4)}", "message": "hello"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status == 200 and bool(json.loads(answer.read()))
        except (OSError, ValueError):
            return False

    # --- faults ------------------------------------------------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to program `name` and reap it."""
        process = self.processes[name]
        process.send_signal(sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def postgres(self, action: str, *options: str) -> None:
        """pg_ctl `action` (restart -m fast, stop -m immediate, start) on the data host's cluster."""
        run("ip", "netns", "exec", self.ns("data"), *self.pg_ctl_command, action, *options)

    def cut(self, role: str) -> None:
        """Take the host's link to the switch down (the host is cut off; its processes keep running)."""
        run("ip", "netns", "exec", self.ns("sw"), "ip", "link", "set", self.hosts[role].switch_veth, "down")

    def reconnect(self, role: str) -> None:
        run("ip", "netns", "exec", self.ns("sw"), "ip", "link", "set", self.hosts[role].switch_veth, "up")

    def restart(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop program `name` with `sig`, start it again and, for an app host's program, wait until it is ready."""
        self.kill(name, sig)
        self.start_program(name)
        role = self.programs[name][0]
        if role in self.app_roles:
            self.wait_ready([role])

    def database_clients(self, database: str = "tracker") -> List[str]:
        """The addresses PostgreSQL's sessions on `database` come from (pg_stat_activity)."""
        engine = create_engine(self.database_url("postgres"), future=True)
        try:
            with engine.connect() as connection:
                query = text(
                    "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE datname = :d AND client_addr IS NOT NULL"
                )
                return sorted(str(row[0]) for row in connection.execute(query, {"d": database}))
        finally:
            engine.dispose()

    def redis_clients(self) -> List[str]:
        """The addresses of Redis's connected clients (CLIENT LIST)."""
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            return sorted({str(entry["addr"]).rsplit(":", 1)[0] for entry in client.client_list()})
        finally:
            client.close()

    def memory(self) -> Dict[str, int]:
        """Resident memory (bytes, shared memory left out) of every process of every host, summed by host and program
        name ("app1/rasa", "data/postgres": the postmaster and its backends)."""
        found: Dict[str, int] = {}
        for role in self.hosts:
            for pid in run("ip", "netns", "pids", self.ns(role), check=False).stdout.split():
                name, rss = process_memory(int(pid))
                if name:
                    key = f"{role}/{name}"
                    found[key] = found.get(key, 0) + rss
        return found

    def pids(self) -> Dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.poll() is None}

    # --- tearing it down -----------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every process, remove every namespace and veth and the folder (safe to call twice)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if "data" in self.hosts and self.pg_ctl_command:
            run("ip", "netns", "exec", self.ns("data"), *self.pg_ctl_command, "stop", "-m", "immediate", check=False)
        for role in [*self.hosts, "sw"]:
            kill_namespace(self.ns(role))
        if self._client_veth:
            run("ip", "link", "delete", self._client_veth, check=False)
        if self.workdir != Path() and self.workdir.is_relative_to(OWNERS) and self.workdir.name.startswith(PREFIX):
            shutil.rmtree(self.workdir, ignore_errors=True)
        (OWNERS / f"{PREFIX}-{self.run_id}.owner").unlink(missing_ok=True)

    def logs(self) -> Iterator[Tuple[str, str]]:
        """Each program's log (the last 4,000 characters), for a failing test's report."""
        for path in sorted(self.workdir.glob("*.log")):
            yield path.name, path.read_text(errors="replace")[-4000:]


PROGRAM_NAMES = {"onewindow.rasa_plugins.server": "rasa", "onewindow.infra.action_server": "actions"}


def process_memory(pid: int) -> Tuple[str, int]:
    """(program name, resident bytes) of process `pid` ("", 0 once it is gone): "rasa", "actions", "haproxy",
    "postgres", "redis-server". Resident memory without shared memory (RSS less RssShmem): PostgreSQL's shared
    buffers would otherwise count once in every backend that touched them."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "", 0
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    name = fields.get("Name", "").strip()
    words = [word.decode(errors="replace") for word in arguments]
    if "-m" in words[:-1]:
        name = PROGRAM_NAMES.get(words[words.index("-m") + 1], name)
    elif len(words) > 1 and words[1].endswith("/rasa"):  # the stock assistant: the `rasa` script
        name = "rasa"
    kilobytes = int(fields.get("VmRSS", "0 kB").split()[0]) - int(fields.get("RssShmem", "0 kB").split()[0])
    return name, kilobytes * 1024


def listening_anywhere(program: Program) -> List[str]:
    """`program`'s command with its loopback listening address replaced by every address of its namespace."""
    return [ANY_ADDRESS if arg == LOOPBACK else arg for arg in program.command]
