"""The database's disk full (`make test-ha`: root, to mount a filesystem): the bank test
on a PostgreSQL whose data folder, WAL included, is on a small tmpfs of its own. A
third into the run a ballast file takes every byte left, and stays for 10 s. Tables
that cannot grow refuse the write (SQLSTATE 53100), and a WAL that cannot grow stops
the server (PANIC; it then cannot start until there is room). The service must answer
503 throughout, never 500, never acknowledge what is not durable; once the ballast is
gone (and the server started again, as an operator would), it works again; then every
check of the bank test."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.postgres.engine import migrate
from tests.bank.checks import verify
from tests.bank.soak import summary
from tests.bank.workload import Bank, Settings
from tests.ha.cluster import as_postgres, psql
from tests.ha.test_failover import servers_on
from tests.servers import ServerProcess, free_port

pytestmark = pytest.mark.ha

DISK_MB = 160
FULL_FOR = 10.0


@dataclass
class SmallDisk:
    """A PostgreSQL on a tmpfs of DISK_MB, its log outside it (so the server can say
    why it stopped)."""

    mount: Path
    log: Path
    port: int

    @property
    def data(self) -> Path:
        return self.mount / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/balance"

    def start(self) -> None:
        done = as_postgres(
            f"pg_ctl start -w -t 60 -D {self.data} -l {self.log}"
            f" -o '-p {self.port} -k {self.mount} -c listen_addresses=127.0.0.1'"
        )
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)

    def running(self) -> bool:
        return as_postgres(f"pg_ctl status -D {self.data}").returncode == 0

    def fill(self) -> int:
        """Every byte left taken by a ballast file: how many."""
        written = 0
        chunk = b"\0" * (1 << 20)
        with (self.mount / "ballast").open("wb", buffering=0) as ballast:
            while True:
                try:
                    written += ballast.write(chunk)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
            while True:  # the last partial chunk
                try:
                    written += ballast.write(b"\0" * 4096)
                except OSError:
                    return written

    def empty(self) -> None:
        (self.mount / "ballast").unlink()


@contextlib.contextmanager
def small_disk() -> Iterator[SmallDisk]:
    base = Path(tempfile.mkdtemp(prefix="balance-disk-"))
    mount = base / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)], check=True
    )
    shutil.chown(mount, "postgres")
    shutil.chown(base, "postgres")
    disk = SmallDisk(mount, base / "postgres.log", free_port())
    try:
        # WAL in 1 MB segments and a small max_wal_size: the WAL grows in steps a
        # small disk can run out of, not 16 MB at a time.
        done = as_postgres(f"initdb -D {disk.data} -U postgres --auth trust --wal-segsize=1")
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        with (disk.data / "postgresql.conf").open("a") as conf:
            conf.write("max_wal_size = 32MB\nmin_wal_size = 4MB\n")
        disk.start()
        psql(disk.port, "CREATE DATABASE balance")
        yield disk
    finally:
        as_postgres(f"pg_ctl stop -m immediate -D {disk.data}")
        subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(base, ignore_errors=True)


class DiskFullBank(Bank):
    """The bank workload; its one fault: the disk full for FULL_FOR seconds, a third
    into the run. `recovered`: from the ballast's removal to the first movement
    acknowledged after it."""

    def __init__(self, settings: Settings, servers: list[ServerProcess], disk: SmallDisk) -> None:
        super().__init__(settings, servers, disk.url)
        self.disk = disk
        self.filled = 0
        self.emptied_at: float | None = None
        self.restarted = False

    async def _inject_faults(self, deadline: float) -> None:
        await self._sleep_until(time.monotonic() + self.settings.seconds / 3)
        self.filled = await asyncio.to_thread(self.disk.fill)
        self.run.faults["the database's disk full (a ballast file)"] += 1
        await self._sleep_until(time.monotonic() + FULL_FOR)
        await asyncio.to_thread(self.disk.empty)
        self.emptied_at = time.monotonic()
        if not await asyncio.to_thread(self.disk.running):
            # Stopped by a WAL it could not write, as an operator would: start it again.
            await asyncio.to_thread(self.disk.start)
            self.restarted = True
            self.run.faults["PostgreSQL started again after it stopped"] += 1
        await self._sleep_until(deadline)

    def recovered(self) -> float:
        assert self.emptied_at is not None
        return self.run.recovered(self.emptied_at)


async def test_a_full_disk_is_503_until_there_is_room_and_nothing_acknowledged_is_lost() -> None:
    with small_disk() as disk:
        await migrate(disk.url)
        servers = servers_on(disk.url)
        try:
            for server in servers:
                await asyncio.to_thread(server.start)
            bank = DiskFullBank(Settings(seconds=45, clients=32), servers, disk)
            run = await bank.execute()
            verdict = await verify(run, disk.url, servers[0].base_url)
        finally:
            for server in servers:
                server.kill()
        print(summary(run, verdict))
        print(
            f"  ballast {bank.filled / 2**20:.1f} MB; PostgreSQL started again: {bank.restarted};"
            f" first movement acknowledged {bank.recovered():.1f} s after the room came back"
        )
        said = disk.log.read_text()
    print(f"  PostgreSQL's log: {said.count('No space left on device')} lines of no space left")
    assert bank.filled > 0
    assert "No space left on device" in said  # the server met it
    assert verdict.failures == []
    assert run.anomalies == []  # no 5xx but 503, no key reuse
    assert run.retries["http 503"] > 0  # it was felt
    assert bank.recovered() < 15
