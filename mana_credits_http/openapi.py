"""The OpenAPI document, generated from the route tables and their pydantic models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .models import ErrorOut
from .routes import Route

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "user": [{"bearer": []}],
    "admin": [{"bearer": []}],
    "service": [{"serviceKey": []}],
}


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def tag(path: str) -> str:
    """The group an operation shows under in /docs: the path's area of the API."""
    parts = path.strip("/").split("/")
    if parts[:2] != ["api", "v1"]:
        return "gifts" if parts[0] == "g" else "operations"
    return parts[2]  # credits, gifts, sync, webhooks, internal, admin


def version() -> str:
    """The installed distribution's version, or the source tree's (`pyproject.toml`)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("mana-credits")
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0"


def document(routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`: JSON operations with their models, pages
    (`text/html`, `text/javascript`) as text; `info.version` is the package's."""
    components: dict[str, Any] = {}
    json_error = {"application/json": {"schema": _schema(ErrorOut, components)}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "tags": [tag(route.path)],
            "summary": route.summary,
            "operationId": re.sub(r"[^a-z0-9]+", "_", f"{route.method} {route.path}".lower()).strip(
                "_"
            ),
            "responses": {"default": {"description": "Error", "content": json_error}},
        }
        if route.content_type != "application/json":  # a page answers its errors as pages
            page = {route.content_type: {"schema": {"type": "string"}}}
            operation["responses"]["default"]["content"] = page
        parameters = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in route.path.split("/")
            if part.startswith("{")
        ]
        if parameters:
            operation["parameters"] = parameters
        if route.auth in SECURITY:
            operation["security"] = SECURITY[route.auth]
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(route.body, components)}},
            }
        ok: dict[str, Any] = {"description": "Success"}
        if route.content_type != "application/json":
            ok["content"] = {route.content_type: {"schema": {"type": "string"}}}
        elif route.response is not None:
            schema = _schema(route.response, components)
            if route.many:
                schema = {"type": "array", "items": schema}
            ok["content"] = {"application/json": {"schema": schema}}
        operation["responses"][str(route.status)] = ok
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "mana-credits", "version": version()},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "serviceKey": {"type": "apiKey", "in": "header", "name": "X-Service-Key"},
            },
        },
    }
