"""The FHIR API tests share the JSON API's fixtures (token clients, patients at each site)."""

from api.tests.conftest import (  # noqa: F401  (fixtures)
    coverage,
    patient,
    riverside_coverage,
    riverside_patient,
    token_client,
)
