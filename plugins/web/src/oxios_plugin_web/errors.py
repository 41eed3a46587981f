"""API errors: one JSON shape, ``{"error": ...}``, with the right status.

Handlers raise :class:`ApiError` (or let a kernel ``NotAvailable``, ``NotFound``,
``Conflict`` or ``Invalid`` escape); :func:`error_response` turns any exception
into a response by its class, never by its message. An unexpected exception
becomes a 500 carrying only an error id; the stack trace goes to the log under
that id, never to the client.
"""

from __future__ import annotations

import logging
import uuid

import msgspec
from starlette.responses import Response

from oxios.logs import redact

log = logging.getLogger("oxios.web")


class ApiError(Exception):
    """An error a client caused (or can act on): status code plus message."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, message)


_ENCODER = msgspec.json.Encoder()


def json_error(status: int, message: str, *, headers: dict[str, str] | None = None, **extra: object) -> Response:
    body = {"error": message, **extra}
    return Response(_ENCODER.encode(body), status_code=status, media_type="application/json", headers=headers)


_FIELD_PROBLEMS = {
    "Object contains unknown field `": "unknown field",
    "Object missing required field `": "required",
}


def validation_message(err: msgspec.ValidationError) -> str:
    """msgspec says ``Expected `str`, got `int` - at `$.content```; name the field plainly.

    The message starts with the field (``content: required``, ``sesion_id: unknown field``), also
    when msgspec names it inside the sentence, so a client can tell which key to fix.
    """
    text = str(err)
    message, sep, where = text.partition(" - at `$")
    parent = where.rstrip("`").lstrip(".") if sep else ""
    for prefix, problem in _FIELD_PROBLEMS.items():
        if message.startswith(prefix) and message.endswith("`"):
            name = message[len(prefix) : -1]
            return f"{parent}.{name}: {problem}" if parent else f"{name}: {problem}"
    if not sep:
        return message
    return f"{parent or 'body'}: {message}"


def _is_service_error(err: BaseException) -> bool:
    """A service's own refusal class that is not a ValueError (``SkillError``, ``DeliveryError`` ...).

    Judged by the class (defined in an ``oxios`` module, named ``...Error``), never by the message.
    """
    cls = type(err)
    return (
        cls.__module__.startswith("oxios")
        and cls.__name__.endswith("Error")
        and not cls.__module__.startswith("oxios_plugin_web")
    )


def error_response(err: BaseException) -> Response:
    """The response for any exception a handler let escape; the status comes from its class alone.

    ``NotFound`` (any ``LookupError``) is 404, ``Conflict`` 409, ``Invalid`` (any
    ``ValueError``) and a service's own error class 422, ``PermissionError`` 403,
    ``NotAvailable`` 501; anything else is a bug: 500 with an error id.
    """
    from oxios.kernel import Conflict, NotAvailable

    if isinstance(err, ApiError):
        return json_error(err.status, err.message, headers=err.headers)
    if isinstance(err, NotAvailable):
        return json_error(501, str(err))
    if isinstance(err, msgspec.ValidationError):
        return json_error(422, validation_message(err))
    if isinstance(err, msgspec.DecodeError):
        return json_error(400, f"malformed JSON body: {err}")
    if isinstance(err, LookupError):
        message = err.args[0] if err.args and isinstance(err.args[0], str) else "not found"
        return json_error(404, redact(message))
    if isinstance(err, Conflict):
        return json_error(409, redact(str(err) or "conflict"))
    if isinstance(err, ValueError) or _is_service_error(err):
        return json_error(422, redact(str(err) or type(err).__name__))
    if isinstance(err, PermissionError):
        return json_error(403, redact(str(err) or "forbidden"))
    error_id = uuid.uuid4().hex[:12]
    log.error("internal error %s", error_id, exc_info=(type(err), err, err.__traceback__))
    return json_error(500, f"internal error (id {error_id}; details are in the daemon log)", error_id=error_id)
