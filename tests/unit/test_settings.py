import pytest

from adapters.postgres.hosts import Hosts, hosts_of
from entrypoints.settings import ApiToken, ConfigError, Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.port, settings.workers, settings.database_url) == (8080, 1, None)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"WORKERS": "0"}, "WORKERS"),
        ({"DB_POOL_SIZE": "-1"}, "DB_POOL_SIZE"),
        ({"BATCH_MAX_SIZE": "1001"}, "BATCH_MAX_SIZE"),
        ({"BATCH_IN_FLIGHT": "0"}, "BATCH_IN_FLIGHT"),
        ({"EXPIRY_SWEEP_MS": "-5"}, "EXPIRY_SWEEP_MS"),
        ({"DATABASE_POOLER": "pgpool"}, "DATABASE_POOLER"),
        ({"BALANCE_STORE": "redis"}, "BALANCE_STORE"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u@a:5432,b:x/db"}, "DATABASE_URL"),
        ({"BALANCE_API_TOKENS": "short=read"}, "BALANCE_API_TOKENS"),
        ({"BALANCE_API_TOKENS": "a-long-enough-token-1=read+root"}, "BALANCE_API_TOKENS"),
        ({"BALANCE_API_TOKENS": "a-long-enough-token-1"}, "BALANCE_API_TOKENS"),
        (
            {"BALANCE_API_TOKENS": "a-long-enough-token-1=read,a-long-enough-token-1=write"},
            "BALANCE_API_TOKENS",
        ),
        ({"BALANCE_API_TOKENS": "a long enough token 1=read"}, "BALANCE_API_TOKENS"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"BALANCE_MIGRATE": "yes"}, "BALANCE_MIGRATE"),
        ({"SHUTDOWN_TIMEOUT": "0"}, "SHUTDOWN_TIMEOUT"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_tokens_with_scopes_for_rotation() -> None:
    settings = Settings.from_env(
        {"BALANCE_API_TOKENS": "old-token-0123456789=read+write+report, new-token-0123456789=read"}
    )
    assert settings.api_tokens == (
        ApiToken("old-token-0123456789", frozenset({"read", "write", "report"})),
        ApiToken("new-token-0123456789", frozenset({"read"})),
    )
    assert Settings.from_env({}).api_tokens == ()


def test_a_token_may_name_its_caller_and_tokens_may_share_one() -> None:
    raw = "old-token-0123456789=read+write@billing,new-token-0123456789=write@billing"
    settings = Settings.from_env({"BALANCE_API_TOKENS": raw})
    assert settings.api_tokens == (
        ApiToken("old-token-0123456789", frozenset({"read", "write"}), "billing"),
        ApiToken("new-token-0123456789", frozenset({"write"}), "billing"),
    )


@pytest.mark.parametrize(
    "entry",
    [
        "a-long-enough-token-1=read@",  # an @ with no name
        "a-long-enough-token-1=read@bill ing",
        "a-long-enough-token-1=read@billing@eu",
        "a-long-enough-token-1=read@" + "b" * 65,
        "a-long-enough-token-1=@billing",  # a name, no scopes
    ],
)
def test_a_bad_caller_name_is_refused(entry: str) -> None:
    with pytest.raises(ConfigError, match="BALANCE_API_TOKENS"):
        Settings.from_env({"BALANCE_API_TOKENS": entry})


def test_the_command_line_stops_on_a_bad_value_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrypoints.cli import main

    monkeypatch.setenv("WORKERS", "many")
    assert main(["serve"]) == 2
    error = capsys.readouterr().err
    assert error == "balance: configuration error: WORKERS must be an integer, got 'many'\n"


def test_db_wait_defaults_to_a_minute_and_is_bounded() -> None:
    assert Settings.from_env({}).db_wait == 60
    assert Settings.from_env({"DB_WAIT": "0"}).db_wait == 0
    with pytest.raises(ConfigError):
        Settings.from_env({"DB_WAIT": "-1"})


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("postgresql://u@db/balance", [("db", None)]),
        ("postgresql://u:p%40ss@a:5432,b:5433/balance", [("a", 5432), ("b", 5433)]),
        ("postgresql://a,b/balance?port=6432", [("a", 6432), ("b", 6432)]),
        ("postgresql://[::1]:5433,b/balance", [("::1", 5433), ("b", None)]),
        ("postgresql://%2Fvar%2Frun,b:7/x", [("/var/run", None), ("b", 7)]),
        ("postgresql:///x?host=/s1,/s2&port=5,6", [("/s1", 5), ("/s2", 6)]),
        ("postgresql:///x", []),
    ],
)
def test_a_urls_hosts_are_read_as_libpq_lists_them(
    url: str, hosts: list[tuple[str, int | None]]
) -> None:
    """Each host is connected to in turn with a timeout of its own (open_connection)."""
    assert hosts_of(url) == hosts


@pytest.mark.parametrize(
    ("query", "sticky"),
    [
        ("?target_session_attrs=read-write", True),
        ("?target_session_attrs=primary", True),
        ("", False),
    ],
)
def test_the_host_that_took_a_connection_is_tried_first_only_if_it_is_the_primary(
    query: str, sticky: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that took a connection without being asked for the primary may be a
    standby: preferring it would keep every later connection on it."""
    monkeypatch.delenv("PGTARGETSESSIONATTRS", raising=False)
    hosts = Hosts(f"postgresql://u@a:1,b:2,c:3/x{query}")
    assert hosts.in_turn() == [("a", 1), ("b", 2), ("c", 3)]
    hosts.took(("b", 2))
    expected = [("b", 2), ("a", 1), ("c", 3)] if sticky else [("a", 1), ("b", 2), ("c", 3)]
    assert hosts.in_turn() == expected


@pytest.mark.parametrize("query", ["?target_session_attrs=read-write", ""])
def test_a_host_whose_connect_timed_out_is_tried_last_until_it_takes_one_again(
    query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failover under way: the old primary silent, its standby not promoted yet.
    Each connect asked the silent host first and spent its timeout there."""
    monkeypatch.delenv("PGTARGETSESSIONATTRS", raising=False)
    hosts = Hosts(f"postgresql://u@a:1,b:2,c:3/x{query}")
    hosts.took(("a", 1))
    hosts.timed_out(("a", 1))
    assert hosts.in_turn() == [("b", 2), ("c", 3), ("a", 1)]
    hosts.timed_out(("b", 2))  # the latest to time out goes last
    assert hosts.in_turn() == [("c", 3), ("a", 1), ("b", 2)]
    hosts.took(("a", 1))  # answers again: in its place, or first if it is the primary
    assert hosts.in_turn() == [("a", 1), ("c", 3), ("b", 2)]


def test_a_reader_that_goes_away_ends_a_command_quietly() -> None:
    """`balance openapi | head -c 1`, the reader gone before the document is written
    (it takes the command a second to build): the command ends with SIGPIPE's exit,
    and no traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from entrypoints.cli import SIGPIPE_EXIT

    read_end, write_end = os.pipe()
    balance = Path(sys.executable).with_name("balance")
    process = subprocess.Popen([str(balance), "openapi"], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    os.close(read_end)  # the reader went away
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert process.wait(timeout=30) == SIGPIPE_EXIT, stderr
    assert stderr == b""
