"""How a REST endpoint is declared, run and documented.

Each route module lists :class:`Endpoint` values. The same list builds the
Starlette routes (:func:`to_route`) and the OpenAPI document
(:mod:`oxios_plugin_web.openapi`), so the documentation cannot drift from
what the server really does.

An endpoint's handler gets a :class:`Call` (the request, the kernel, the
decoded body and the typed query values) and returns a msgspec Struct, a
plain JSON value or a Starlette ``Response``.
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from oxios.plugins import resolve

from .errors import ApiError, error_response

KB = 1024
DEFAULT_BODY_LIMIT = 1024 * KB
MAX_PAGE_LIMIT = 500

T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], kw_only=True):
    """One page of a list: ``items`` plus where it sits in the whole."""

    items: list[T]
    total: int
    page: int
    limit: int


class ErrorBody(msgspec.Struct, kw_only=True):
    error: str
    error_id: str | None = None


class ActionResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The generic answer of an action: ``{"status": "deleted", "id": ...}``."""

    status: str
    id: str | None = None
    name: str | None = None


@dataclasses.dataclass(frozen=True)
class Param:
    """A query parameter: parsed to ``type`` (str, int, float or bool) and documented."""

    name: str
    type: type = str
    description: str = ""
    default: Any = None
    required: bool = False
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()  # the only values accepted (a typo is a 422, not an empty list)


PAGING = (
    Param("page", int, "page number, from 1", 1, minimum=1),
    Param("limit", int, f"items per page (at most {MAX_PAGE_LIMIT})", 50, minimum=1, maximum=MAX_PAGE_LIMIT),
)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[[Call], Awaitable[Any]]
    summary: str
    tag: str
    body: Any = None  # msgspec Struct type of the JSON request body
    response: Any = None  # type of the JSON response (None: no body)
    status: int = 200
    query: Sequence[Param] = ()
    body_limit: int = DEFAULT_BODY_LIMIT
    raw_body: bool = False  # the body is taken as bytes (workspace files)
    media_type: str = "application/json"  # of the success response
    errors: Sequence[int] = ()  # documented error statuses beyond the common ones
    public: bool = False  # no auth (``/health``)
    service: str | None = None  # the kernel service it needs (documents the 501)
    description: str = ""


class Call:
    """What a handler sees: the request, the kernel, the decoded body and query."""

    def __init__(self, request: Request, endpoint: Endpoint, body: Any, raw: bytes, query: dict[str, Any]) -> None:
        self.request = request
        self.endpoint = endpoint
        self.body = body
        self.raw = raw
        self.query = query
        self.kernel = request.app.state.kernel

    @property
    def path(self) -> dict[str, Any]:
        return self.request.path_params

    @property
    def role(self) -> str | None:
        """The role of the API token that authenticated this request (None when auth is off)."""
        return self.request.scope.get("oxios.role")

    @property
    def actor(self) -> str:
        """Who the audit chain names for this request: ``web:ROLE``, ``web:local`` with auth off."""
        return f"web:{self.role or 'local'}"

    def service(self, name: str) -> Any:
        return self.kernel.service(name)

    async def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``kernel.services[service].method(...)``, awaited; 501 when either is missing."""
        from oxios.kernel import NotAvailable

        svc = self.kernel.service(service)
        fn = getattr(svc, method, None)
        if fn is None:
            raise NotAvailable(f"{service}.{method}", "this version of the service does not offer it")
        return await resolve(fn(*args, **kwargs))

    def paginate(self, items: Sequence[Any]) -> Page[Any]:
        page, limit = self.query["page"], self.query["limit"]
        start = (page - 1) * limit
        return Page(items=list(items[start : start + limit]), total=len(items), page=page, limit=limit)


# -- encoding -----------------------------------------------------------------


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    for name in ("as_dict", "to_dict"):
        method = getattr(obj, name, None)
        if callable(method):
            return method()
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)


def to_builtins(value: Any) -> Any:
    """Plain JSON-shaped data from Structs, dataclasses and service objects."""
    return msgspec.json.decode(ENCODER.encode(value))


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(ENCODER.encode(value), status_code=status, media_type="application/json", headers=headers)


# -- request parsing --------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) as soon as it passes ``limit`` bytes, before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body too large: {declared} bytes (limit {limit})")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body too large: more than {limit} bytes (limit {limit})")
        chunks.append(chunk)
    return b"".join(chunks)


# What `curl -d '{...}'` sends without -H: the seeds' own examples do this, so it is read as JSON.
CURL_DEFAULT = "application/x-www-form-urlencoded"


def check_json_content_type(request: Request) -> None:
    """A JSON body must not say it is something else (415).

    No Content-Type, and curl's default for ``-d``, are read as JSON (a body that is not JSON is
    then a 400 like any other). Cross-site forms cannot use that leeway: the Origin check refuses them.
    """
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media in ("", "application/json", CURL_DEFAULT) or (media.startswith("application/") and media.endswith("+json")):
        return
    raise ApiError(415, f"expected a JSON body (Content-Type: application/json), got Content-Type: {media}")


def _parse_param(param: Param, raw: str | None) -> Any:
    if raw is None or raw == "":
        if param.required:
            raise ApiError(422, f"{param.name}: required query parameter is missing")
        return param.default
    try:
        if param.type is bool:
            lowered = raw.lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            value: Any = lowered in ("1", "true", "yes")
        else:
            value = param.type(raw)
    except ValueError:
        raise ApiError(422, f"{param.name}: expected {param.type.__name__}, got {raw!r}") from None
    if param.minimum is not None and value < param.minimum:
        raise ApiError(422, f"{param.name}: must be >= {param.minimum}")
    if param.maximum is not None and value > param.maximum:
        raise ApiError(422, f"{param.name}: must be <= {param.maximum}")
    if param.choices and value not in param.choices:
        raise ApiError(422, f"{param.name}: must be one of {', '.join(param.choices)}, got {raw!r}")
    return value


def to_route(endpoint: Endpoint) -> Route:
    """The Starlette route running ``endpoint`` with body limits, decoding and error mapping."""
    decoder = msgspec.json.Decoder(endpoint.body) if endpoint.body is not None else None

    async def run(request: Request) -> Response:
        try:
            raw = b""
            body = None
            if decoder is not None or endpoint.raw_body:
                raw = await read_body(request, endpoint.body_limit)
            if decoder is not None and raw.strip():
                check_json_content_type(request)
            if decoder is not None:
                body = decoder.decode(raw.strip() or b"{}")
            query = {p.name: _parse_param(p, request.query_params.get(p.name)) for p in endpoint.query}
            result = await endpoint.handler(Call(request, endpoint, body, raw, query))
            if isinstance(result, Response):
                return result
            if endpoint.response is None and result is None:
                return Response(status_code=endpoint.status if endpoint.status != 200 else 204)
            return json_response(result, endpoint.status)
        except Exception as err:  # every failure becomes {"error": ...}
            return error_response(err)

    run.__name__ = endpoint.handler.__name__
    return Route(endpoint.path, run, methods=[endpoint.method], name=f"{endpoint.method} {endpoint.path}")
