"""The schema's revisions as this code knows them (its Alembic migrations), and whether
this code may run on a schema at a revision it does not know: one a later version
migrated, whose `schema_floor` names the oldest code that keeps working on it
(migrations/README.md, rules 4 and 5)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config() -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


REVISION_SQL = "SELECT version_num FROM alembic_version"
FLOOR_SQL = "SELECT oldest_code FROM schema_floor"


@functools.cache
def head_revision() -> str:
    """The newest migration this code knows."""
    head = _scripts().get_current_head()
    assert head is not None
    return head


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every migration this code knows: a schema at one of them but the head is behind
    it; at none, ahead (a later version migrated it)."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


def behind(version: str) -> bool:
    """Whether a schema at `version` is one this code would migrate."""
    return version != head_revision() and version in known_revisions()


class SchemaTooNew(Exception):
    """The schema names, as the oldest code that keeps working on it, a revision this
    code does not know: this code is too old for it (migrations/README.md, rule 5)."""


def too_old(version: str, floor: str | None) -> str | None:
    """Why this code must not run on a schema at `version` (one it does not know: a
    later version's) whose floor is `floor`; None: it may."""
    if floor in known_revisions():
        return None
    return (
        f"schema at {version} needs code of revision {floor} or later;"
        f" this code is at {head_revision()}"
    )
