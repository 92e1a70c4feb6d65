"""The project's URLs with the interfaces mounted at /interfaces/, for the view tests, whether or
not config/urls.py includes interop.urls yet."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

_mounted = any(getattr(p, "namespace", None) == "interop" for p in project_urlpatterns)

urlpatterns = [*project_urlpatterns]
if not _mounted:
    urlpatterns.append(path("interfaces/", include("interop.urls")))
