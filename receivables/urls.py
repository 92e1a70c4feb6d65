"""URLs of the receivables app."""

from django.urls import URLPattern, URLResolver, path

from receivables import views

app_name = "receivables"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.aging, name="aging"),
    path("aging.csv", views.aging_csv, name="aging_csv"),
    path("kpis/", views.kpis, name="kpis"),
]
