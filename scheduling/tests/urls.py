"""The scheduling router mounted at /api/v1/ on its own NinjaAPI, with the API's problem+json
handlers and 405 answers, so the API tests do not depend on the rest of the URL configuration."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, re_path
from ninja import NinjaAPI

from api.auth import API_AUTH
from api.errors import install_handlers, not_found_view, problem_for_django_errors
from scheduling.api import router

test_api = NinjaAPI(urls_namespace="sched_test", auth=API_AUTH, docs_url=None)
install_handlers(test_api, field_map={})
test_api.add_router("", router)


def _with_problem_405(
    patterns: list[URLPattern | URLResolver],
) -> list[URLPattern | URLResolver]:
    return [
        URLPattern(p.pattern, problem_for_django_errors(p.callback), p.default_args, p.name)
        if isinstance(p, URLPattern)
        else p
        for p in patterns
    ]


_patterns, _app_name, _namespace = test_api.urls

urlpatterns = [
    re_path(
        r"^api/v1/",
        include((_with_problem_405(_patterns), _app_name), namespace=_namespace),
    ),
    re_path(r"^api/v1/", not_found_view),
]
