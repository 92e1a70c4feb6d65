from django.apps import AppConfig


class PatientaccountsConfig(AppConfig):
    name = "patientaccounts"
    verbose_name = "Patient accounts"
