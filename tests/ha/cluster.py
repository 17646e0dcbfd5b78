"""A real PostgreSQL failover cluster on this machine, for the HA tests: a
pg_auto_failover monitor, a primary and a synchronous standby (Debian's
postgresql-15-auto-failover), each `pg_autoctl` running as the `postgres` OS user
with its own data folder and port; and PgBouncer (Debian's pgbouncer) when asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.processes import processes
from tests.servers import free_port

BIN = "/usr/lib/postgresql/15/bin"
# Detection tuned for a test (defaults: checks every 5 s, unhealthy after 20 s, a
# lost primary given 30 s to demote itself): a node that stops answering is given
# up on after about 3 s and its standby promoted 5 s later. The keepers' own
# network_partition_timeout goes down to 3 s with it, so a primary cut off from
# the monitor and its standby still demotes itself before the standby is promoted.
MONITOR_SETTINGS = {
    "pgautofailover.primary_demote_timeout": "5000",
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "3000",
}


def as_postgres(command: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        ["su", "postgres", "-s", "/bin/sh", "-c", f"PATH={BIN}:$PATH {command}"],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def psql(port: int, sql: str, database: str = "postgres") -> str:
    done = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database, "-Atc", sql],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return done.stdout.strip()


@dataclass
class Node:
    name: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Cluster:
    base: Path
    monitor: Node
    nodes: list[Node]
    database: str = "balance"
    pgbouncer: subprocess.Popen[bytes] | None = None
    bouncer_port: int = 0
    env: str = ""  # where pg_autoctl keeps its configuration and state
    cut: list[int] = field(default_factory=list)  # ports cut off the network (iptables)

    @property
    def url(self) -> str:
        """The service's DATABASE_URL: every node, and only the primary takes writes."""
        hosts = ",".join(node.address for node in self.nodes)
        return f"postgresql://postgres@{hosts}/{self.database}?target_session_attrs=read-write"

    def bouncer_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.bouncer_port}/{database}"

    def direct_url(self, database: str) -> str:
        return self.url.replace(f"/{self.database}?", f"/{database}?")

    def states(self, assigned: bool = False) -> dict[str, str]:
        """Each node's state as it reported it (or as the monitor assigned it)."""
        folder = self.monitor.folder
        done = as_postgres(f"env {self.env} pg_autoctl show state --json --pgdata {folder}")
        if done.returncode != 0:
            return {}
        key = "assigned_group_state" if assigned else "current_group_state"
        return {n["nodename"]: n[key] for n in json.loads(done.stdout)}

    def primary(self) -> Node | None:
        """The node that takes writes: with a standby `primary`, alone `wait_primary`
        (a killed primary still reports `primary`, but is assigned otherwise)."""
        writing = {"primary", "wait_primary"}
        current, assigned = self.states(), self.states(assigned=True)
        return next(
            (n for n in self.nodes if {current.get(n.name), assigned.get(n.name)} <= writing),
            None,
        )

    def wait_for(self, wanted: dict[str, str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while (found := self.states()) != wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster never reached {wanted}: {found}")
            time.sleep(0.5)

    def wait_for_a_standby(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while sorted(self.states().values()) != ["primary", "secondary"]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no standby in sync: {self.states()}")
            time.sleep(0.3)

    def switchover(self) -> None:
        folder = self.nodes[0].folder
        done = as_postgres(f"env {self.env} pg_autoctl perform switchover --pgdata {folder}")
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)

    def stop_primary(self) -> Node:
        """Freeze the primary (stop_all_of) and leave it frozen."""
        node = self.primary()
        assert node is not None
        stop_all_of(node)
        return node

    def cut_off_primary(self) -> Node:
        """Cut the primary off the network and leave it so: every packet to or from
        its port dropped (iptables), so nothing sent to it is ever acknowledged, and
        its pg_autoctl, which would go on reporting to the monitor that it is well,
        frozen. Its PostgreSQL runs on, reached by no one: a partition. (SIGSTOP
        alone, `stop_primary`, leaves the kernel acknowledging what is sent.)"""
        node = self.primary()
        assert node is not None
        self.cut.append(node.port)
        for rule in _drops(node.port):
            subprocess.run(["iptables", "-I", *rule], check=True)
        for pid in _processes_of(node, only="pg_autoctl"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        return node

    def reconnect(self) -> None:
        """Every port cut off is on the network again."""
        while self.cut:
            port = self.cut.pop()
            for rule in _drops(port):
                subprocess.run(["iptables", "-D", *rule], check=False)

    def kill_standby(self) -> Node:
        """kill -9 the synchronous standby (and its pg_autoctl), and leave it down."""
        primary = self.primary()
        node = next(n for n in self.nodes if n is not primary)
        kill_all_of(node)
        return node

    def kill_primary(self) -> Node:
        """kill -9 the primary's postmaster and its pg_autoctl (which would start it
        again), and leave them down."""
        node = self.primary()
        assert node is not None
        kill_all_of(node)
        return node


def _drops(port: int) -> list[list[str]]:
    """iptables rules that drop every TCP packet to or from the port (loopback too)."""
    return [
        ["INPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP"],
        ["INPUT", "-p", "tcp", "--sport", str(port), "-j", "DROP"],
    ]


def stop_all_of(node: Node) -> None:
    """SIGSTOP the node's pg_autoctl and every PostgreSQL process under it: the kernel
    still takes connections on its port and nothing ever answers them, as with a
    machine gone without a word (a crash, a partition)."""
    for pid in _processes_of(node):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)


def kill_all_of(node: Node, seconds: float = 15) -> None:
    """SIGKILL the node's pg_autoctl and every process under it (its services set
    their own titles), and any process whose command line names its data folder;
    again until none is left alive: a supervisor can start a child between the
    look at the process table and its own kill (once, pg_autoctl started the
    postmaster again and the node "left down" answered)."""
    deadline = time.monotonic() + seconds
    while doomed := _processes_of(node):
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if node.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.process.wait(timeout=0.2)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{node.name}: processes still alive: {sorted(doomed)}")
        time.sleep(0.2)


def _processes_of(node: Node, only: str = "") -> set[int]:
    """The node's live processes (zombies, already dead, are not counted); `only`:
    those whose command line has it."""
    table = [p for p in processes() if p.state not in ("Z", "X")]
    doomed = {p.pid for p in table if str(node.folder) in p.command}
    if node.process is not None and node.process.poll() is None:
        doomed.add(node.process.pid)
    while grown := {p.pid for p in table if p.parent in doomed} - doomed:
        doomed |= grown
    doomed.discard(os.getpid())
    return {p.pid for p in table if p.pid in doomed and only in p.command}


def _start(node: Node, command: str, log: Path) -> None:
    node.process = subprocess.Popen(
        ["su", "postgres", "-s", "/bin/sh", "-c", f"PATH={BIN}:$PATH exec {command}"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@contextlib.contextmanager
def cluster(with_pgbouncer: bool = False) -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="balance-ha-"))
    shutil.chown(base, "postgres")
    ports = [free_port() for _ in range(4)]
    monitor = Node("monitor", ports[0], base / "monitor")
    nodes = [Node(f"node_{i}", ports[i], base / f"node{i}") for i in (1, 2)]
    found = Cluster(base, monitor, nodes)
    # pg_autoctl keeps its own configuration under the postgres user's home.
    home = {"XDG_CONFIG_HOME": str(base / "config"), "XDG_DATA_HOME": str(base / "data")}
    prefix = found.env = " ".join(f"{k}={v}" for k, v in home.items())
    try:
        _start(
            monitor,
            f"env {prefix} pg_autoctl create monitor --pgdata {monitor.folder}"
            f" --pgport {monitor.port} --hostname 127.0.0.1 --auth trust --no-ssl --run",
            base / "monitor.log",
        )
        _wait_port(monitor.port, "pg_auto_failover")
        for setting, value in MONITOR_SETTINGS.items():
            psql(monitor.port, f"ALTER SYSTEM SET {setting} = '{value}'", "pg_auto_failover")
        psql(monitor.port, "SELECT pg_reload_conf()", "pg_auto_failover")
        monitor_url = f"postgres://autoctl_node@127.0.0.1:{monitor.port}/pg_auto_failover"
        for index, node in enumerate(nodes):
            _start(
                node,
                f"env {prefix} pg_autoctl create postgres --pgdata {node.folder}"
                f" --pgport {node.port} --hostname 127.0.0.1 --name {node.name}"
                f" --auth trust --no-ssl --dbname {found.database}"
                f" --monitor '{monitor_url}?sslmode=disable' --run",
                base / f"{node.name}.log",
            )
            if index == 0:
                found.wait_for({"node_1": "single"})
        _wait_for_standby(found)
        for node in nodes:
            as_postgres(
                f"env {prefix} pg_autoctl config set --pgdata {node.folder}"
                " timeout.network_partition_timeout 3"
            )
        if with_pgbouncer:
            _start_pgbouncer(found)
        yield found
    finally:
        found.reconnect()
        for process in [*(n.process for n in [monitor, *nodes]), found.pgbouncer]:
            if process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for _ in range(3):  # pg_autoctl restarts what dies while it lives
            for node in [monitor, *nodes]:
                kill_all_of(node)
            time.sleep(0.3)
        # su runs pgbouncer in a process group of its own: the killpg above left it
        # running, one more each run, until a later run's cluster misbehaved.
        subprocess.run(["pkill", "-9", "-f", f"pgbouncer {base}"], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_standby(found: Cluster) -> None:
    """The standby's base backup waits for a checkpoint: ask for one, not for 5 minutes."""
    deadline = time.monotonic() + 120
    while found.states() != {"node_1": "primary", "node_2": "secondary"}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no standby: {found.states()}")
        with contextlib.suppress(RuntimeError):
            psql(found.nodes[0].port, "CHECKPOINT")
        time.sleep(1)


def _wait_port(port: int, database: str = "postgres", timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psql(port, "SELECT 1", database)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _start_pgbouncer(found: Cluster) -> None:
    """PgBouncer 1.18 in transaction mode in front of the current primary."""
    primary = found.primary()
    assert primary is not None
    found.bouncer_port = free_port()
    config = found.base / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={primary.port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {found.bouncer_port}\n"
        "auth_type = trust\n"
        f"auth_file = {found.base / 'users.txt'}\n"
        "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 20\n"
        f"unix_socket_dir =\nlogfile = {found.base / 'pgbouncer.log'}\n"
    )
    (found.base / "users.txt").write_text('"postgres" ""\n')
    shutil.chown(config, "postgres")
    shutil.chown(found.base / "users.txt", "postgres")
    found.pgbouncer = subprocess.Popen(
        ["su", "postgres", "-s", "/bin/sh", "-c", f"exec pgbouncer {config}"],
        stdout=(found.base / "pgbouncer.out").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_port(found.bouncer_port, found.database)
