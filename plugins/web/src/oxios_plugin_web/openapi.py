"""The OpenAPI 3.1 document, generated from the same :class:`Endpoint` list that builds the routes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from .api import Endpoint, ErrorBody

_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")
_STATUS_TEXT = {
    400: "Malformed request (bad JSON)",
    401: "Authentication required or token invalid",
    403: "Forbidden (sandbox, policy, origin or role)",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "The body is not declared as JSON (send Content-Type: application/json, or none)",
    422: "Validation failed; the message names the field",
    429: "Rate limit exceeded (see Retry-After)",
    500: "Internal error (logged with the returned id)",
    501: "The service behind this endpoint is not available",
    502: "The agent failed; the body says why",
    503: "Not ready",
    426: "This is a WebSocket endpoint: upgrade the connection",
}


def openapi_path(path: str) -> str:
    return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _schema_for(tp: Any, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    if tp is str:
        return {"type": "string"}
    if tp is bytes:
        return {"type": "string", "contentMediaType": "application/octet-stream"}
    return refs[tp]


def _param_schema(param: Any) -> dict[str, Any]:
    kind = {int: "integer", float: "number", bool: "boolean"}.get(param.type, "string")
    schema: dict[str, Any] = {"type": kind}
    if param.default is not None:
        schema["default"] = param.default
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    if param.choices:
        schema["enum"] = list(param.choices)
    return schema


def _error(status: int) -> dict[str, Any]:
    return {
        "description": _STATUS_TEXT.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def _operation(ep: Endpoint, refs: dict[Any, dict[str, Any]], auth: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{ep.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', openapi_path(ep.path)).strip('_')}",
        "summary": ep.summary,
        "tags": [ep.tag],
    }
    if ep.description:
        op["description"] = ep.description
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in _PATH_PARAM.findall(ep.path)
    ]
    for param in ep.query:
        entry = {"name": param.name, "in": "query", "required": param.required, "schema": _param_schema(param)}
        if param.description:
            entry["description"] = param.description
        params.append(entry)
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[ep.body]}}}
    elif ep.raw_body:
        op["requestBody"] = {"required": True, "content": {"application/octet-stream": {"schema": _schema_for(bytes, refs)}}}
    responses: dict[str, Any] = {}
    if ep.response is None:
        responses[str(ep.status if ep.status != 200 else 204)] = {"description": "Done"}
    else:
        responses[str(ep.status)] = {
            "description": "Success",
            "content": {ep.media_type: {"schema": _schema_for(ep.response, refs)}},
        }
    statuses = set(ep.errors) | {429, 500}
    if ep.body is not None or ep.raw_body:
        statuses |= {400, 413, 422}
    if ep.body is not None:
        statuses.add(415)
    if ep.query:
        statuses.add(422)
    if _PATH_PARAM.search(ep.path):
        statuses.add(404)
    if ep.service:
        statuses.add(501)
    if not ep.public and auth:
        statuses.add(401)
    if ep.method != "GET":
        statuses.add(403)  # a foreign Origin, or a role without the capability (auth on)
    for status in sorted(statuses):
        if status == 502 and ep.response is not None and ep.response not in (str, bytes):
            responses["502"] = {
                "description": _STATUS_TEXT[502],
                "content": {"application/json": {"schema": _schema_for(ep.response, refs)}},
            }
        else:
            responses[str(status)] = _error(status)
    op["responses"] = responses
    if ep.public:
        op["security"] = []
    return op


def build(endpoints: Sequence[Endpoint], *, version: str, extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    types: list[Any] = [ErrorBody]
    for ep in endpoints:
        for tp in (ep.body, ep.response):
            if tp is not None and tp not in (str, bytes) and tp not in types:
                types.append(tp)
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    # msgspec names generic instances like "Page_dict_str__typing.Any__"; give them readable names.
    renames = {name: "ItemPage" for name in components if name.startswith("Page_dict")}
    if renames:
        text = msgspec.json.encode([schemas, components]).decode()
        for old, new in renames.items():
            text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
        schemas, components = msgspec.json.decode(text)
        components = {renames.get(k, k): v for k, v in components.items()}
    refs = dict(zip(types, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(openapi_path(ep.path), {})[ep.method.lower()] = _operation(ep, refs, auth=True)
    for path, item in (extra_paths or {}).items():
        paths.setdefault(path, {}).update(item)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Oxios API",
            "version": version,
            "description": 'REST API of the Oxios daemon (web channel plugin). Errors are {"error": "..."}; '
            "lists are {items, total, page, limit}. With security.auth_enabled every /api route needs a bearer token.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (`oxios token create`); only checked when security.auth_enabled is true.",
                }
            },
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


STREAM_PATHS: dict[str, Any] = {
    "/api/events": {
        "get": {
            "operationId": "get_api_events",
            "summary": "Server-Sent Events: the kernel's events (agent.started, tool.finished, approval.requested ...)",
            "tags": ["events"],
            "description": "Each event has `id:` (send it back as Last-Event-ID to resume), `event:` and JSON `data:`. "
            "A `resync` event means events were lost: reload state over REST. `?types=agent.*,tool.*` filters; "
            "`?token=` authenticates clients that cannot set headers (EventSource).",
            "parameters": [
                {
                    "name": "types",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "comma-separated event names or prefixes ending in *",
                },
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "replay the events after this id",
                },
            ],
            "responses": {
                "200": {
                    "description": "An endless event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": _error(400),
                "401": _error(401),
                "429": _error(429),
            },
        }
    },
    "/api/chat/stream": {
        "get": {
            "operationId": "get_api_chat_stream",
            "summary": "WebSocket chat: send {type: message}, receive token* then done (or error), by message id",
            "tags": ["chat"],
            "description": "Upgrade to a WebSocket. See docs/web.md for the frame protocol. `?token=` authenticates "
            "when auth is on.",
            "responses": {
                "101": {"description": "Switching protocols"},
                "401": _error(401),
                "403": _error(403),
                "426": _error(426),
                "429": _error(429),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "get_openapi",
            "summary": "This document",
            "tags": ["system"],
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
}
