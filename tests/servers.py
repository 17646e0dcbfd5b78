"""Real `balance serve` processes for end-to-end tests: start, kill -9, restart, stop."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests import postgres
from tests.processes import processes

BALANCE = Path(sys.executable).with_name("balance")


def tree_at(commit: str, folder: Path) -> Path:
    """This repository's files as they were at `commit` (it needs the history), in
    `folder`: another version's code, to run beside this one."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "archive", commit], cwd=root, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def server_of_tree(tree: Path, env: dict[str, str], workers: int = 1) -> ServerProcess:
    """A `balance serve` of the code in `tree` (`tree_at`), run from its own files with
    this environment's packages (a superset of what it needs)."""
    return ServerProcess(
        {**env, "PYTHONPATH": str(tree)},
        workers=workers,
        cwd=tree,
        command=[sys.executable, "-c", "from entrypoints.cli import main; main()"],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessLog:
    """A file that processes write to at once while the test reads it.

    Every write lands at the end (O_APPEND: `open(mode="a")` on a descriptor, as
    `tempfile` makes them, only seeks to the end once), and reading moves no offset: the
    writers share the descriptor's offset, and a seek(0) before a read let a worker's
    line overwrite the start of the file (a JSON log line cut to "}").
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - as long as its server
        fd = self._file.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self) -> str:
        fd, chunks, at = self._file.fileno(), [], 0
        while chunk := os.pread(fd, 1 << 20, at):
            chunks.append(chunk)
            at += len(chunk)
        return b"".join(chunks).decode(errors="replace")


class ServerProcess:
    """One `balance serve` (granian main process plus workers) in its own process group."""

    def __init__(
        self,
        env: dict[str, str],
        workers: int = 2,
        port: int | None = None,
        balance: Path = BALANCE,
        cwd: Path | None = None,
        *,
        command: list[str] | None = None,
    ) -> None:
        """`balance` and `cwd`: another checkout's command, for a side-by-side benchmark;
        `command`: how to run `balance` there, if not as `balance`."""
        self.port = port or free_port()
        self._balance, self._cwd = balance, cwd
        self._command = command or [str(balance)]
        self.workers = workers
        self._env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self._env |= {"PORT": str(self.port), "WORKERS": str(workers), **env}
        self._process: subprocess.Popen[bytes] | None = None
        self._metrics = ""
        self._log = ProcessLog()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return self._env["DATABASE_URL"]

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def start(self, timeout: float = 60) -> None:
        # Each run counts into a directory of its own, removed when the server is
        # killed (kill -9 leaves serve no time to remove the one it would make).
        self._metrics = tempfile.mkdtemp(prefix="balance-test-metrics-")
        self._process = subprocess.Popen(
            [*self._command, "serve"],
            env={**self._env, "PROMETHEUS_MULTIPROC_DIR": self._metrics},
            cwd=self._cwd,
            stdout=self._log.fileno(),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                live = httpx.get(f"{self.base_url}/health/live", timeout=1).status_code == 200
            except httpx.TransportError:
                live = False
            # Every worker up: a SIGTERM that lands while one still boots is not what
            # these tests are about.
            if live and self.output().count("Started worker-") >= self.workers:
                return
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"server did not start:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return self._log.read()

    def workers_pids(self) -> list[int]:
        """The granian worker processes (children of the main process)."""
        return [p.pid for p in processes() if p.parent == self.pid]

    def kill(self) -> None:
        """kill -9 the main process and every worker: nothing gets to clean up."""
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        shutil.rmtree(self._metrics, ignore_errors=True)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator would; the exit code."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        try:
            code = self._process.wait(timeout=timeout)
            shutil.rmtree(self._metrics, ignore_errors=True)
            return code
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"no exit {timeout} s after SIGTERM:\n{self.output()}") from None

    def signal_term(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self._process is not None
        return self._process.wait(timeout=timeout)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


@contextlib.contextmanager
def fresh_server(
    pg_server: str, env: dict[str, str] | None = None, workers: int = 1
) -> Iterator[ServerProcess]:
    """A started server on a new database of its own, killed and dropped afterwards."""
    name = postgres.unique_name()
    url = asyncio.run(postgres.create_database(pg_server, name))
    server = ServerProcess({"DATABASE_URL": url, **(env or {})}, workers=workers)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        asyncio.run(postgres.drop_database(pg_server, name))
