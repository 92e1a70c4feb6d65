"""URLs of the patientaccounts app (mounted at /patient-accounts/)."""

from django.urls import URLPattern, URLResolver, path

from patientaccounts import views

app_name = "patientaccounts"

urlpatterns: list[URLPattern | URLResolver] = [
    path("<uuid:public_id>/", views.account, name="account"),
    path("<uuid:public_id>/pay/", views.payment_take, name="payment_take"),
    path("<uuid:public_id>/refund/", views.refund_request, name="refund_request"),
    path("<uuid:public_id>/plan/", views.plan_create, name="plan_create"),
    path("<uuid:public_id>/statement/", views.statement_create, name="statement_create"),
    path("<uuid:public_id>/dispute/", views.dispute_open, name="dispute_open"),
    path("payments/<uuid:public_id>/receipt.pdf", views.receipt_pdf, name="receipt_pdf"),
    path("refunds/", views.refund_list, name="refund_list"),
    path(
        "refunds/<uuid:public_id>/approve/",
        views.refund_decide,
        {"decision": "approve"},
        name="refund_approve",
    ),
    path(
        "refunds/<uuid:public_id>/reject/",
        views.refund_decide,
        {"decision": "reject"},
        name="refund_reject",
    ),
    path("statements/", views.statement_runs, name="statement_runs"),
    path("statements/runs/<uuid:public_id>/", views.statement_run, name="statement_run"),
    path("statements/<uuid:public_id>/pdf/", views.statement_pdf, name="statement_pdf"),
    path("disputes/", views.dispute_list, name="dispute_list"),
    path("disputes/<uuid:public_id>/", views.dispute_detail, name="dispute_detail"),
    path("disputes/<uuid:public_id>/notes/", views.dispute_note, name="dispute_note"),
    path(
        "disputes/<uuid:public_id>/letters/<slug:letter>.pdf",
        views.dispute_letter,
        name="dispute_letter",
    ),
    path("reports/deposit/", views.deposit_report, name="deposit_report"),
]
