"""URLs of the billing app (mounted at /billing/)."""

from django.urls import URLPattern, URLResolver, path

from billing import views

app_name = "billing"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("claims/", views.claim_list, name="claim_list"),
    path("claims/<uuid:public_id>/", views.claim_detail, name="claim"),
    path("claims/<uuid:public_id>/cms1500.pdf", views.claim_cms1500, name="claim_cms1500"),
    path("claims/<uuid:public_id>/scrub/", views.claim_scrub, name="claim_scrub"),
    path("claims/<uuid:public_id>/status/", views.claim_status, name="claim_status"),
    path("claims/<uuid:public_id>/replace/", views.claim_replace, name="claim_replace"),
    path("claims/<uuid:public_id>/void/", views.claim_void, name="claim_void"),
    path("patients/<uuid:public_id>/encounters/new/", views.encounter_new, name="encounter_new"),
    path("encounters/<uuid:public_id>/", views.encounter_detail, name="encounter"),
    path("encounters/<uuid:public_id>/charges/", views.charge_add, name="charge_add"),
    path("encounters/<uuid:public_id>/claims/", views.claim_create, name="claim_create"),
    path("charges/<uuid:public_id>/correct/", views.charge_correct, name="charge_correct"),
    path("icd10/check/", views.icd10_check, name="icd10_check"),
    path("setup/payers/", views.payer_list, name="payer_list"),
    path("setup/payers/new/", views.payer_edit, name="payer_new"),
    path("setup/payers/<uuid:public_id>/", views.payer_edit, name="payer_edit"),
    path("setup/fee-schedules/", views.fee_schedule_list, name="fee_schedule_list"),
    path("setup/fee-schedules/new/", views.fee_schedule_edit, name="fee_schedule_new"),
    path("setup/fee-schedules/<uuid:public_id>/", views.fee_schedule_edit, name="fee_schedule"),
    path(
        "setup/fee-schedules/<uuid:public_id>/entries/",
        views.fee_entry_set,
        name="fee_entry_set",
    ),
]
