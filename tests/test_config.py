from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from app.config import Environment, Settings
from app.db import is_embedded


@pytest.fixture(autouse=True)
def _no_outside_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    """Neither the caller's SENTINEL_* variables nor a .env left by the run command count."""
    import os

    for name in [n for n in os.environ if n.startswith("SENTINEL_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


@pytest.mark.parametrize("env", [Environment.PRODUCTION, Environment.TEST])
@pytest.mark.parametrize("secret", ["changethis", "", "secret", "short-but-not-a-placeholder"])
def test_outside_development_placeholder_or_short_secrets_are_refused(
    env: Environment, secret: str
) -> None:
    with pytest.raises(ValidationError, match="SENTINEL_SECRET_KEY"):
        Settings(env=env, secret_key=secret)


def test_production_accepts_a_real_secret() -> None:
    settings = Settings(env=Environment.PRODUCTION, secret_key="x" * 40)
    assert settings.secret_key == "x" * 40


def test_the_default_is_production_and_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="SENTINEL_SECRET_KEY"):
        Settings()


def test_development_allows_the_placeholder() -> None:
    assert Settings(env=Environment.DEVELOPMENT).secret_key == "changethis"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_ENV", "development")
    monkeypatch.setenv("SENTINEL_ROUTING_SNAP_M", "75")
    monkeypatch.setenv("SENTINEL_DATABASE_URL", "postgresql+psycopg://u@h/db")
    settings = Settings()
    assert settings.routing_snap_m == 75
    assert not is_embedded(settings.database_url) and not settings.run_embedded_worker


def test_embedded_worker_defaults_to_on_with_the_embedded_database() -> None:
    assert Settings(env=Environment.DEVELOPMENT).run_embedded_worker
