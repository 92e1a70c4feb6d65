"""/api/v1/: django-ninja's routes, each answering a wrong method with problem+json, and a
problem+json 404 for any other path under the prefix."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, re_path

from api.api import api
from api.errors import not_found_view, problem_for_django_errors


def _with_problem_405(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    wrapped: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern = URLPattern(
                pattern.pattern,
                problem_for_django_errors(pattern.callback),
                pattern.default_args,
                pattern.name,
            )
        wrapped.append(pattern)
    return wrapped


_patterns, _app_name, _namespace = api.urls

urlpatterns = [
    re_path(r"", include((_with_problem_405(_patterns), _app_name), namespace=_namespace)),
    re_path(r"", not_found_view, name="api-not-found"),
]
