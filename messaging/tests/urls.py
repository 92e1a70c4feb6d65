"""The project's URLs plus /m/ (until config/urls.py includes messaging.urls itself)."""

from django.urls import URLPattern, URLResolver, include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns: list[URLPattern | URLResolver] = list(project_urlpatterns)
if not any(getattr(p, "namespace", None) == "messaging" for p in urlpatterns):
    urlpatterns.append(path("m/", include("messaging.urls")))
