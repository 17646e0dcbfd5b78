"""This machine's processes as /proc shows them: for tests and benchmarks that kill,
find or time real processes."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    parent: int
    name: str
    command: str
    cpu_ticks: int  # user + system, in clock ticks
    state: str  # R, S, D, ... Z a zombie (dead, not yet waited for)


def processes() -> list[Process]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            name, rest = stat.split("(", 1)[1].rsplit(")", 1)
            fields = rest.split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            found.append(
                Process(
                    int(entry.name),
                    int(fields[1]),
                    name,
                    command,
                    int(fields[11]) + int(fields[12]),
                    fields[0],
                )
            )
    return found
