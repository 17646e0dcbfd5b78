"""Configuration from the environment, validated once at start."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from adapters.postgres.hosts import hosts_of


class ConfigError(ValueError):
    """A bad setting: the message names the variable."""


class ApiToken(NamedTuple):
    """One entry of BALANCE_API_TOKENS: a token, what it may do, and the name of the
    caller it stands for (recorded with what it does; None: an unnamed token)."""

    token: str
    scopes: frozenset[str]
    caller: str | None = None


CALLER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class Settings:
    store: str = "postgres"
    database_url: str | None = None
    data_dir: Path = Path(".data/postgres")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    pool_size: int = 4
    max_batch: int = 64
    in_flight: int = 1  # batches in flight per worker (the pool also serves reads)
    max_wait_ms: int = 5000
    """How long a money request may wait in its worker's queue for a batch; then 503,
    not run."""
    body_timeout_ms: int = 10_000
    """How long a request's body may stop coming; then 408."""
    sweep_ms: int = 1000
    pooler: bool = False
    api_tokens: tuple[ApiToken, ...] = ()
    log_level: str = "INFO"
    log_format: str = "json"
    migrate: bool = True
    shutdown_timeout: int = 30
    db_wait: int = 60
    """Seconds `migrate` (and `serve`, which migrates first) waits for PostgreSQL to
    accept connections."""
    app_role: str | None = None
    broker_url: str | None = None
    relay: bool = True
    """With a broker: whether `serve` starts a relay beside its workers."""
    broker_exchange: str = "balance.events"
    relay_lease_ms: int = 5000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        store = env.get("BALANCE_STORE", "postgres")
        if store not in ("postgres", "memory"):
            raise ConfigError(f"BALANCE_STORE must be 'postgres' or 'memory', got {store!r}")
        url = env.get("DATABASE_URL") or None
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must start with postgresql://")
        if url is not None:
            try:
                hosts_of(url)
            except ValueError:
                raise ConfigError("DATABASE_URL: each host's port must be a number") from None
        return cls(
            store=store,
            database_url=url,
            data_dir=Path(env.get("BALANCE_DATA_DIR", ".data/postgres")),
            host=env.get("HOST", "127.0.0.1"),
            port=_int(env, "PORT", 8080, 1, 65535),
            workers=_int(env, "WORKERS", 1, 1, 64),
            pool_size=_int(env, "DB_POOL_SIZE", 4, 1, 200),
            max_batch=_int(env, "BATCH_MAX_SIZE", 64, 1, 1000),
            in_flight=_int(env, "BATCH_IN_FLIGHT", 1, 1, 200),
            max_wait_ms=_int(env, "BATCH_MAX_WAIT_MS", 5000, 100, 600_000),
            body_timeout_ms=_int(env, "BODY_TIMEOUT_MS", 10_000, 100, 600_000),
            sweep_ms=_int(env, "EXPIRY_SWEEP_MS", 1000, 0, 60_000),
            pooler=_choice(env, "DATABASE_POOLER", "none", ("none", "pgbouncer")) == "pgbouncer",
            api_tokens=_tokens(env.get("BALANCE_API_TOKENS", "")),
            log_level=_choice(
                env, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True
            ),
            log_format=_choice(env, "LOG_FORMAT", "json", ("json", "text")),
            migrate=_choice(env, "BALANCE_MIGRATE", "1", ("1", "0")) == "1",
            shutdown_timeout=_int(env, "SHUTDOWN_TIMEOUT", 30, 1, 600),
            db_wait=_int(env, "DB_WAIT", 60, 0, 3600),
            app_role=_role(env.get("BALANCE_APP_ROLE") or None),
            broker_url=_broker(env.get("BROKER_URL") or None),
            relay=_choice(env, "RELAY", "on", ("on", "off")) == "on",
            broker_exchange=_exchange(env.get("BROKER_EXCHANGE") or "balance.events"),
            relay_lease_ms=_int(env, "RELAY_LEASE_MS", 5000, 500, 600_000),
        )


def _broker(url: str | None) -> str | None:
    if url is not None and not url.startswith(("amqp://", "amqps://")):
        raise ConfigError("BROKER_URL must start with amqp:// or amqps://")
    return url


def _exchange(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,127}", name):
        raise ConfigError(f"BROKER_EXCHANGE must be 1..127 of A-Z a-z 0-9 _ . : -, got {name!r}")
    return name


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


SCOPES = ("read", "write", "report", "admin")
MIN_TOKEN_LENGTH = 16


def _tokens(raw: str) -> tuple[ApiToken, ...]:
    """'tok1=read+write@billing,tok2=read' -> ((tok1, {read, write}, billing), (tok2,
    {read}, None)). The caller's name after `@` is optional; tokens may share one (a
    rotation: the old and the new token of one caller)."""
    grants: dict[str, ApiToken] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        token, equals, granted = item.partition("=")
        where = "BALANCE_API_TOKENS"
        scopes, at, caller = granted.partition("@")
        if not equals or not scopes:
            raise ConfigError(
                f"{where}: each entry is token=scope+scope or token=scope+scope@caller,"
                " got one without scopes"
            )
        if len(token) < MIN_TOKEN_LENGTH or not all("!" <= ch <= "~" for ch in token):
            raise ConfigError(
                f"{where}: tokens must be at least {MIN_TOKEN_LENGTH} printable ASCII characters"
                " without spaces"
            )
        wanted = frozenset(scopes.split("+"))
        if not wanted <= set(SCOPES):
            unknown = ", ".join(sorted(wanted - set(SCOPES)))
            raise ConfigError(
                f"{where}: unknown scope {unknown} (known: read, write, report, admin)"
            )
        if at and not CALLER_NAME.fullmatch(caller):
            raise ConfigError(
                f"{where}: a caller's name (after @) is 1..64 of A-Z a-z 0-9 _ . -, got {caller!r}"
            )
        if token in grants:
            raise ConfigError(f"{where}: a token is listed twice")
        grants[token] = ApiToken(token, wanted, caller if at else None)
    return tuple(grants.values())


def _choice(
    env: Mapping[str, str],
    name: str,
    default: str,
    allowed: tuple[str, ...],
    *,
    upper: bool = False,
) -> str:
    raw = env.get(name) or default
    value = raw.upper() if upper else raw.lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return value


def _role(name: str | None) -> str | None:
    if name is not None and re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name) is None:
        raise ConfigError(f"BALANCE_APP_ROLE must be a plain lower-case role name, got {name!r}")
    return name
