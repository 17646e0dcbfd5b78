"""A database that cannot be reached is a 503 with Retry-After, never a 500."""

from __future__ import annotations

from litestar.testing import TestClient

from entrypoints.container import build_app
from entrypoints.settings import Settings


def test_unreachable_database_is_a_clean_503() -> None:
    settings = Settings(store="postgres", database_url="postgresql://postgres@127.0.0.1:1/none")
    with TestClient(build_app(settings)) as client:
        for response in [
            client.post("/v1/deposits", json={"user_id": 1, "amount": "1"}),
            client.get("/v1/users/1/balance"),
        ]:
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            assert response.headers["content-type"] == "application/problem+json"
            assert "Traceback" not in response.text


def test_readiness_flips_with_the_database() -> None:
    down = Settings(store="postgres", database_url="postgresql://postgres@127.0.0.1:1/none")
    with TestClient(build_app(down)) as client:
        assert client.get("/health/live").json() == {"status": "ok"}
        not_ready = client.get("/health/ready")
        assert not_ready.status_code == 503
        assert not_ready.headers["content-type"] == "application/problem+json"
        # Why, in the pool's words: what refused it, not the pool's own error's name.
        assert not_ready.json()["detail"] in (
            "database unreachable: ConnectionRefusedError",
            "database unreachable: OSError",  # asyncpg's, when every address refused
        ), not_ready.json()
    with TestClient(build_app(Settings(store="memory"))) as client:
        assert client.get("/health/ready").json() == {
            "status": "ready",
            "database": {"role": "memory", "server": "in-process"},
        }
