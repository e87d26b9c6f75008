"""``GET /docs``: the Swagger UI page over ``/openapi.json``, with its script, style and icon
served by the app itself from the fastapi-swagger package (part of the server extra), so the
page works on a machine without internet access."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["DOCS", "DOCS_ASSETS", "add_docs"]

DOCS = "/docs"
DOCS_ASSETS = "/docs/assets"


def add_docs(app: FastAPI) -> None:
    """Serve the API docs page and its assets (the app is built with ``docs_url=None``)."""
    assets = str(files("fastapi_swagger") / "resources")
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get(DOCS, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )
