"""The HTTP feature server: ``create_app(store)`` builds the FastAPI app; ``serve(...)`` runs
it under uvicorn (``featurestore serve``). Needs the ``server`` extra, which is imported only
when ``create_app`` is first used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurestore.server._run import serve

if TYPE_CHECKING:
    from featurestore.server._app import create_app

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from featurestore.server._app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
