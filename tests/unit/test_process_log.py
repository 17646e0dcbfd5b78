"""The log a test server writes to loses no line while the test reads it."""

from __future__ import annotations

import subprocess
import sys

from tests.servers import ProcessLog

WRITER = """
import os, sys
for n in range(int(sys.argv[1])):
    os.write(1, b'{"line": %d}\\n' % n)
"""


def test_lines_written_while_the_log_is_read_are_all_kept_in_order() -> None:
    """Two writers share the descriptor, as granian's main process and workers do, and
    the test reads as they write (ServerProcess.start polls the output)."""
    log = ProcessLog()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, "3000"], stdout=log.fileno())
        for _ in range(2)
    ]
    while any(w.poll() is None for w in writers):
        log.read()
    lines = log.read().splitlines()
    assert len(lines) == 6000
    assert sorted(lines) == sorted([f'{{"line": {n}}}' for n in range(3000)] * 2)
