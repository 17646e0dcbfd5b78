import pytest

from entrypoints.settings import ConfigError, Settings


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
        ({"BALANCE_STORE": "redis"}, "BALANCE_STORE"),
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)
