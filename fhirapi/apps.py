from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "fhirapi"
    verbose_name = "FHIR R4 API"
