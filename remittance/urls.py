"""URLs of the remittance app."""

from django.urls import URLPattern, URLResolver

app_name = "remittance"

urlpatterns: list[URLPattern | URLResolver] = []
