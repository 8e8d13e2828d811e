"""`/docs`: Swagger UI over `/openapi.json`, with every asset served by this server.

The assets come from the swagger-ui-py package (Swagger UI 5, which reads OpenAPI 3.1),
served under `/docs/assets/`; the page loads nothing from another origin, and its
Content-Security-Policy tells the browser to refuse anything that would.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from aiohttp import web

from .routes import Route

PREFIX = "/docs"

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mana-credits API</title>
<link rel="stylesheet" href="{PREFIX}/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="{PREFIX}/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{PREFIX}/assets/swagger-ui-bundle.js"></script>
<script src="{PREFIX}/init.js"></script>
</body>
</html>
"""

# A file rather than an inline script, so the policy can forbid inline scripts.
INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayRequestDuration: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'"
)


def assets_dir() -> Path:
    """Swagger UI's files inside the installed swagger-ui-py (found without importing it).

    Raises RuntimeError when the package is missing (a broken installation).
    """
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        raise RuntimeError("swagger-ui-py is not installed: reinstall mana-credits")
    return Path(spec.origin).parent / "static"


async def page(request: web.Request) -> web.Response:
    return web.Response(
        text=PAGE, content_type="text/html", headers={"Content-Security-Policy": POLICY}
    )


async def init(request: web.Request) -> web.Response:
    return web.Response(text=INIT, content_type="text/javascript")


ROUTES = [
    Route("GET", PREFIX, page, "This API's interactive documentation (Swagger UI)", "none",
          content_type="text/html"),
    Route("GET", PREFIX + "/init.js", init, "The script that starts Swagger UI on /docs", "none",
          content_type="text/javascript"),
]  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Swagger UI's own files (its page and script are in `ROUTES`, added with the rest)."""
    app.router.add_static(PREFIX + "/assets", assets_dir())
