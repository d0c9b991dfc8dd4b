"""``/docs``: Swagger UI from files installed with VBS, so it works offline.

FastAPI's default page loads Swagger UI from a CDN, which fails on an
air-gapped backup server. The static files come from the ``swagger-ui-py``
package (Swagger UI 5, which renders OpenAPI 3.1) and are served under
``/docs/static``; neither route is part of the API document.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["install_docs", "swagger_static_dir"]


def swagger_static_dir() -> Path:
    """The installed Swagger UI files (``swagger_ui/static``), without importing
    the package (its web-framework adapters are not needed here)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed (a VBS dependency)")
    return Path(spec.origin).parent / "static"


def install_docs(app: FastAPI) -> None:
    """Mount ``/docs`` and ``/docs/static`` on ``app``."""
    app.mount("/docs/static", StaticFiles(directory=swagger_static_dir()), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} - API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )
