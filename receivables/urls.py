"""URLs of the receivables app."""

from django.urls import URLPattern, URLResolver

app_name = "receivables"

urlpatterns: list[URLPattern | URLResolver] = []
