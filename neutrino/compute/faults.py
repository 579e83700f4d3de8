"""Compute API errors, rendered the way Nova renders them:
``{"<kind>": {"message": "...", "code": <status>}}`` where the kind follows the
status (``badRequest``, ``forbidden``, ``itemNotFound``, ``conflictingRequest``, ...).
"""

from __future__ import annotations

from typing import Any

import orjson

from neutrino import errors as neutron_errors

#: HTTP status -> the key Nova wraps its error in.
FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}


class ComputeError(Exception):
    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        return {FAULT_NAMES.get(self.status, "computeFault"): {"message": self.message, "code": self.status}}


class BadRequest(ComputeError):
    status = 400


class Forbidden(ComputeError):
    status = 403


class NotFound(ComputeError):
    status = 404


class MethodNotAllowed(ComputeError):
    status = 405

    def __init__(self, message: str = "The method specified is not allowed for this resource.") -> None:
        super().__init__(message)


class NotAcceptable(ComputeError):
    status = 406


class Conflict(ComputeError):
    status = 409


def render(status: int, message: str) -> tuple[bytes, str]:
    """A refusal by the request limits (``neutrino.request_limits``) as Nova renders it: (body, type)."""
    return orjson.dumps(ComputeError(message, status).body()), "application/json"


def policy(rule: str) -> Forbidden:
    return Forbidden(f"Policy doesn't allow {rule} to be performed.")


def from_neutron(exc: neutron_errors.NeutronException) -> ComputeError:
    """A network-side error met while wiring a server (port creation, ...), same status."""
    return ComputeError(exc.msg, exc.status)
