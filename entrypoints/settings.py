"""Configuration from the environment, validated once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A bad setting: the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    store: str = "postgres"
    database_url: str | None = None
    data_dir: Path = Path(".data/postgres")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    pool_size: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        store = env.get("BALANCE_STORE", "postgres")
        if store not in ("postgres", "memory"):
            raise ConfigError(f"BALANCE_STORE must be 'postgres' or 'memory', got {store!r}")
        url = env.get("DATABASE_URL") or None
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must start with postgresql://")
        return cls(
            store=store,
            database_url=url,
            data_dir=Path(env.get("BALANCE_DATA_DIR", ".data/postgres")),
            host=env.get("HOST", "127.0.0.1"),
            port=_int(env, "PORT", 8080, 1, 65535),
            workers=_int(env, "WORKERS", 1, 1, 64),
            pool_size=_int(env, "DB_POOL_SIZE", 10, 1, 200),
        )


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value
