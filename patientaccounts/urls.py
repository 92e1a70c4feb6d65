"""URLs of the patientaccounts app."""

from django.urls import URLPattern, URLResolver

app_name = "patientaccounts"

urlpatterns: list[URLPattern | URLResolver] = []
