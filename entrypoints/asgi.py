"""The ASGI factory granian's workers call: settings come from the environment."""

from litestar import Litestar

from entrypoints.container import build_app
from entrypoints.settings import Settings


def app() -> Litestar:
    return build_app(Settings.from_env())
