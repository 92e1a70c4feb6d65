from django.urls import include, path

from core.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", include("dashboard.urls")),
    path("accounts/", include("accounts.urls")),
    path("patients/", include("patients.urls")),
    path("schedule/", include("scheduling.urls")),
    path("audit/", include("audit.urls")),
    path("billing/batches/", include("billing.urls_batches")),
    path("billing/", include("billing.urls")),
    path("remittances/", include("remittance.urls")),
    path("patient-accounts/", include("patientaccounts.urls")),
    path("receivables/", include("receivables.urls")),
    path("m/", include("messaging.urls")),
    path("interfaces/", include("interop.urls")),
    path("api/v1/", include("api.urls")),
    path("fhir/r4/", include("fhirapi.urls")),
]
