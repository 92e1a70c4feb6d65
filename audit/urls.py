from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.report, name="report"),
    path("export/", views.export, name="export"),
    path("break-glass/", views.break_glass, name="break_glass"),
]
