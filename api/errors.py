"""RFC 9457 problem details for every error the JSON API returns.

Each response has `type`, `title`, `status` and `detail`; validation problems add
`errors: [{"field": ..., "message": ...}]` naming each field. The content type is
`application/problem+json`. Errors raised by django-ninja (validation, authentication, a body
that is not JSON), by the services (Django's ValidationError, PermissionDenied) and by the
selectors (Http404) all pass through here, and so do Django's own 404 and 405 answers for
/api/v1/ paths (see api/urls.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from audit.models import Action, Category, Outcome
from audit.services import record

PROBLEM_CONTENT_TYPE = "application/problem+json"
VALIDATION_TYPE = "urn:patientdesk:problem:validation"
DUPLICATE_TYPE = "urn:patientdesk:problem:duplicate-candidates"

# Parameter sources django-ninja puts first in an error location ("body", "query", "path"...).
_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}


def problem(
    status: int,
    detail: str,
    *,
    title: str = "",
    type_: str = "about:blank",
    errors: Iterable[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> HttpResponse:
    """A problem+json response. `title` defaults to the HTTP reason phrase."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extra)
    response = HttpResponse(
        json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers
    )
    return response


def validation_problem(errors: list[dict[str, Any]], detail: str = "") -> HttpResponse:
    fields = sorted({e["field"] for e in errors if e["field"]})
    return problem(
        422,
        detail or ("Check these fields: " + ", ".join(fields) if fields else "Check the request."),
        title="The request has invalid fields",
        type_=VALIDATION_TYPE,
        errors=errors,
    )


def _field_from_location(loc: Iterable[Any]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in _SOURCES:
        source = parts.pop(0)
        # A body schema is one parameter (e.g. "payload"): its name is not a field the
        # client sent, so drop it. Query and path parameters are named directly.
        if source == "body" and len(parts) > 1:
            parts.pop(0)
    return ".".join(parts)


def _message(error: Mapping[str, Any], field: str) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"Unknown field '{field}': it is not accepted here."
    if kind == "missing":
        return "This field is required."
    msg = str(error.get("msg", "Invalid value."))
    # pydantic prefixes messages of custom validators with "Value error, ".
    return msg.removeprefix("Value error, ")


def ninja_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    result = []
    for error in errors:
        field = _field_from_location(error.get("loc", ()))
        result.append({"field": field, "message": _message(error, field)})
    return result


def django_errors(exc: DjangoValidationError, field_map: Mapping[str, str]) -> list[dict[str, Any]]:
    """Messages of a service's ValidationError, with model field names mapped to API names."""
    if hasattr(exc, "error_dict"):
        result: list[dict[str, Any]] = []
        for name, messages in exc.message_dict.items():
            field = "" if name == NON_FIELD_ERRORS else field_map.get(name, name)
            result.extend({"field": field, "message": message} for message in messages)
        return result
    return [{"field": "", "message": message} for message in exc.messages]


def _route_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.url_name or "") if match else ""


def record_unauthenticated(request: HttpRequest, event: str) -> None:
    """An anonymous request for patient data is a security event (no PHI: the route name)."""
    record(
        actor=None,
        action=Action.EXECUTE,
        event=event,
        category=Category.SECURITY,
        outcome=Outcome.DENIED,
        object_type="url",
        object_id=_route_name(request)[:64],
    )


def install_handlers(api: NinjaAPI, field_map: Mapping[str, str]) -> None:
    """Replace django-ninja's default error answers with problem+json ones."""

    def on_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        return validation_problem(ninja_errors(exc.errors))

    def on_django_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        return validation_problem(django_errors(exc, field_map))

    def on_authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        record_unauthenticated(request, "api.unauthenticated")
        return problem(
            401,
            "Sign in, or send 'Authorization: Bearer <token>' with a personal API token.",
            headers={"WWW-Authenticate": 'Bearer realm="patientdesk"'},
        )

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        detail = str(exc)
        if exc.status_code == 400 and detail.startswith("Cannot parse request body"):
            detail = "The request body is not valid JSON."
        return problem(exc.status_code, detail)

    def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return problem(403, str(exc) or "Your roles do not allow this.")

    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem(404, "No such record, or it is outside your locations.")

    handlers: dict[type[Exception], Any] = {
        NinjaValidationError: on_validation,
        DjangoValidationError: on_django_validation,
        AuthenticationError: on_authentication,
        HttpError: on_http_error,
        PermissionDenied: on_permission_denied,
        Http404: on_not_found,
    }
    for exc_class, handler in handlers.items():
        api.add_exception_handler(exc_class, handler)


def problem_for_django_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Turn Django's plain 405 answer (django-ninja's PathView) into problem+json."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith(
            PROBLEM_CONTENT_TYPE
        ):
            allowed = response.get("Allow", "")
            return problem(
                405,
                f"{request.method} is not allowed here. Allowed: {allowed}.",
                headers={"Allow": allowed},
            )
        return response

    wrapper.csrf_exempt = True  # type: ignore[attr-defined]
    return wrapper


def not_found_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return problem(404, "There is no such API endpoint. See /api/v1/docs.")
