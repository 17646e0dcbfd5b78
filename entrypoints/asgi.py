"""The ASGI factory granian's workers call: settings come from the environment."""

from litestar.types import ASGIApp

from entrypoints.container import build_app
from entrypoints.http.observe import configure_logging
from entrypoints.settings import Settings


def app() -> ASGIApp:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return build_app(settings)
