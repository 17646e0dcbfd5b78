import json
import os
import subprocess
import sys

PROBE = """
import gc, json
from entrypoints.asgi import app
app()
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects()),
                  "young": gc.get_threshold()[0]}))
"""


def test_a_worker_hides_what_it_built_at_start_from_the_collector() -> None:
    """A full collection walks what the collector tracks. A worker's start-up heap
    (modules, the app, its routes and schemas) was 120,000 objects: a walk stopped
    the worker for about 100 ms, which was the p99 of every route under load. The
    factory freezes it, so a collection walks only what requests made since."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"BALANCE_STORE": "memory", "LOG_LEVEL": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    heap = json.loads(done.stdout.splitlines()[-1])
    assert heap["frozen"] > 50_000
    assert heap["walked"] < heap["frozen"] / 100
    # Requests leave no cycles for it to find (tests/contract/test_batches.py), so its
    # young-generation pass, which walks the requests in flight, runs seldom.
    assert heap["young"] == 10_000
