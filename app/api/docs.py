"""/docs (Swagger UI) and /redoc, served entirely from this service: they work offline.

FastAPI's default pages load their scripts from a CDN, the favicon from fastapi.tiangolo.com and
ReDoc's web fonts from Google; here the assets are vendored under /static/vendor (see the
README's "API docs" section for their versions and checksums). Each page also carries a
Content-Security-Policy that lets the browser load nothing from another host, which is what
keeps ReDoc's sidebar logo (an <img> from its CDN) from leaving the machine.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from app.api.dashboard import STATIC_DIR

VENDOR = "/static/vendor"
FAVICON = f"{VENDOR}/favicon-32x32.png"
# Inline script and style: both pages bootstrap with an inline <script>, and both UIs set
# style attributes. ReDoc's search runs in a Web Worker built from a blob: URL.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "child-src 'self' blob:",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(PAGE_HEADERS)
    return page


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and /favicon.ico; the app must be built with docs_url=None."""
    router = APIRouter(include_in_schema=False)
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} API"

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
            # validatorUrl: Swagger UI would otherwise send the schema to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )
        return _with_policy(page)

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=title,
            redoc_js_url=f"{VENDOR}/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
        return _with_policy(page)

    @router.get("/favicon.ico")
    async def favicon() -> FileResponse:
        return FileResponse(STATIC_DIR / "vendor" / "favicon-32x32.png", media_type="image/png")

    app.include_router(router)
